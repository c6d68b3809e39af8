<#
.SYNOPSIS
    Sets the PowerShell execution policy to RemoteSigned, as the setup manual's first step asks.
.DESCRIPTION
    On Windows: if the effective policy does not already allow local scripts, sets RemoteSigned
    for the chosen scope (LocalMachine needs "Run as administrator"; CurrentUser does not) and
    checks that no Group Policy overrides it. Elsewhere: reports "not applicable", because
    PowerShell on Linux and macOS always runs scripts (the policy is Unrestricted there).
    To run this script where scripts are still blocked, start it with
    powershell.exe -ExecutionPolicy Bypass -File .\execution-policy.ps1
.PARAMETER Scope
    LocalMachine (default, as in the manual) or CurrentUser.
.PARAMETER RecordMarker
    Set by calperm: report results as JSON lines starting with this marker. Leave empty when
    running the script by hand.
.EXAMPLE
    .\execution-policy.ps1 -Scope CurrentUser
.NOTES
    Rendered by calperm 0.1.0. It runs unchanged on
    Windows PowerShell 5.1 and PowerShell 7.4 or later (ExchangeOnlineManagement 3.10 lists 7.6); on
    other versions it warns.
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [ValidateSet('LocalMachine', 'CurrentUser')]
    [string] $Scope = 'LocalMachine',
    [string] $RecordMarker = ''
)

# --- Prelude: how this script behaves -------------------------------------------------------
# Stop on any error that is not caught on purpose: per-mailbox errors are caught and reported,
# anything else ends the run with a 'fatal' record instead of carrying on half-blind.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 1.0
$ProgressPreference = 'SilentlyContinue'
$script:Cmdlet = $PSCmdlet
$script:OnWindows = [System.Environment]::OSVersion.Platform -eq [System.PlatformID]::Win32NT
$script:WhatIfMode = [bool]$WhatIfPreference
$script:Counts = @{}
$script:Stopped = $false
$script:ExitCode = 0
# -AwaitAck (grant, revoke, setup); a script without that parameter never waits.
$script:AwaitAck = [bool](Get-Variable -Name AwaitAck -Scope Script -ValueOnly -ErrorAction SilentlyContinue)
if ($RecordMarker) {
    # calperm reads the records as UTF-8, whatever the console code page. Where there is no
    # console (ISE, WinRM, a service) setting it throws "The handle is invalid" (field-notes §7).
    try { [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding($false) } catch { Write-Verbose ('Console output encoding left as it is: ' + $_.Exception.Message) }
}
# Supported: Windows PowerShell 5.1 and PowerShell 7.4 or later (ExchangeOnlineManagement 3.5 and
# later need 7.4; 3.10 lists 7.6 and 5.1, field-notes §7).
$script:PSVersionNumber = New-Object System.Version -ArgumentList $PSVersionTable.PSVersion.Major, $PSVersionTable.PSVersion.Minor
if ($script:PSVersionNumber -lt [version]'5.1' -or ($script:PSVersionNumber.Major -ge 6 -and $script:PSVersionNumber -lt [version]'7.4')) {
    Write-Warning ('PowerShell {0} is not supported: use Windows PowerShell 5.1 or PowerShell 7.4 or later (ExchangeOnlineManagement 3.5 and later need 7.4; 3.10 lists 7.6).' -f $PSVersionTable.PSVersion)
}

# Reports one record. Run by calperm (-RecordMarker given): one JSON line behind the marker.
# Run by hand: results as objects on the pipeline, the rest as verbose or warning messages.
function Write-CalpermRecord {
    param([Parameter(Mandatory = $true)] [System.Collections.Specialized.OrderedDictionary] $Record)
    if ($Record['type'] -eq 'mailbox') {
        $outcome = [string]$Record['outcome']
        $script:Counts[$outcome] = 1 + [int]$script:Counts[$outcome]
        if (@('below', 'missing', 'failed') -contains $outcome) { Set-CalpermExitCode 1 }
    }
    if (($Record['type'] -eq 'step' -or $Record['type'] -eq 'item') -and $Record['outcome'] -eq 'failed') { Set-CalpermExitCode 1 }
    if ($RecordMarker) {
        [Console]::Out.WriteLine($RecordMarker + (ConvertTo-Json -InputObject $Record -Compress -Depth 5))
        return
    }
    switch ($Record['type']) {
        'fatal' { Write-Warning ('{0}: {1}' -f $Record['kind'], $Record['message']) }
        'warning' { Write-Warning $Record['message'] }
        'start' { Write-Verbose ('Starting {0}' -f $Record['script']) }
        'end' { Write-Verbose ('Finished with exit code {0}' -f $Record['exitCode']) }
        default { Write-Output (New-Object PSObject -Property $Record) }
    }
}

function Set-CalpermExitCode {
    param([int] $Code)
    if ($Code -gt $script:ExitCode) { $script:ExitCode = $Code }
}

# Ends the run early: reports why, and makes the rest of the script skip to 'finally'.
function Stop-CalpermRun {
    param([string] $Kind, [string] $Message, [int] $ExitCode = 1)
    Write-CalpermRecord ([ordered]@{ type = 'fatal'; kind = $Kind; message = $Message })
    Set-CalpermExitCode $ExitCode
    $script:Stopped = $true
    throw ('calperm stopped: ' + $Kind)
}

# Run by calperm: reports the change about to be made (an 'intent' record). With -AwaitAck the
# change waits until calperm has written the intent to its journal and answered 'ok' on standard
# input; no answer (calperm was stopped, died or cannot write its journal: the pipe is closed)
# stops the run before the change. So nothing is changed that the journal does not name.
function Confirm-CalpermIntent {
    param([string] $Mailbox, [string] $Action, [string] $FolderIdentity, $Previous = $null, $Rights = $null)
    if (-not $RecordMarker) { return }
    Write-CalpermRecord ([ordered]@{ type = 'intent'; mailbox = $Mailbox; action = $Action; folderIdentity = $FolderIdentity; previous = $Previous; rights = $Rights })
    if (-not $script:AwaitAck) { return }
    $answer = [Console]::In.ReadLine()
    if ($answer -ne 'ok') {
        # Set here too: setup shadows Stop-CalpermRun per step, and this stop ends the run.
        $script:Stopped = $true
        Stop-CalpermRun -Kind 'stopped' -Message 'calperm stopped the run (interrupted, or its journal could not be written); nothing more was changed.'
    }
}

# The catch of a script's main block: a stop has already reported itself; anything else ends
# the run as a fatal error.
function Write-CalpermUnexpected {
    param($ErrorRecord)
    if ($script:Stopped) { return }
    Write-CalpermRecord ([ordered]@{ type = 'fatal'; kind = 'other'; message = $ErrorRecord.Exception.Message })
    Set-CalpermExitCode 1
}

# The last record, then the exit code. Run by hand with `pwsh -File`, exit would drop table
# output still being formatted, so a run by hand that succeeded ends without it.
function Complete-CalpermRun {
    Write-CalpermRecord ([ordered]@{ type = 'end'; exitCode = $script:ExitCode })
    if ($RecordMarker -or $script:ExitCode -ne 0) { exit $script:ExitCode }
}

# --- Execution policy -----------------------------------------------------------------------
# The manual's first step: scripts must be allowed to run. RemoteSigned lets locally written
# scripts run and asks for a signature only on downloaded ones. Windows only: elsewhere
# PowerShell's policy is always Unrestricted and Set-ExecutionPolicy is not supported.
# The policy scripts get outside this process. The Process scope is left out: calperm itself
# starts scripts with -ExecutionPolicy Bypass, which says nothing about the next PowerShell window.
function Get-CalpermPersistentPolicy {
    foreach ($scope in 'MachinePolicy', 'UserPolicy', 'CurrentUser', 'LocalMachine') {
        $policy = [string](Get-ExecutionPolicy -Scope $scope)
        if ($policy -ne 'Undefined') { return $policy }
    }
    # Every scope Undefined: Restricted on Windows clients (RemoteSigned on Windows Server).
    'Restricted'
}

function Invoke-CalpermExecutionPolicy {
    param([string] $Scope)
    if (-not $script:OnWindows) {
        Write-CalpermRecord ([ordered]@{ type = 'step'; step = 'execution-policy'; outcome = 'not-applicable'; message = 'Not applicable on this platform: PowerShell runs every script here (the execution policy is Unrestricted and cannot be changed).' })
        return
    }
    $effective = Get-CalpermPersistentPolicy
    if ('RemoteSigned', 'Unrestricted', 'Bypass' -contains $effective) {
        Write-CalpermRecord ([ordered]@{ type = 'step'; step = 'execution-policy'; outcome = 'unchanged'; message = ('The effective execution policy is already {0}.' -f $effective) })
        return
    }
    if (-not $script:Cmdlet.ShouldProcess($Scope, 'Set-ExecutionPolicy RemoteSigned')) {
        Write-CalpermRecord ([ordered]@{ type = 'step'; step = 'execution-policy'; outcome = 'would-change'; message = ('Would set RemoteSigned for scope {0} (now {1}).' -f $Scope, $effective) })
        return
    }
    try {
        Set-ExecutionPolicy -ExecutionPolicy RemoteSigned -Scope $Scope -Force
    } catch [System.UnauthorizedAccessException] {
        Write-CalpermRecord ([ordered]@{ type = 'step'; step = 'execution-policy'; outcome = 'failed'; message = ('Changing the {0} policy needs an elevated PowerShell ("Run as administrator"); without it, use -Scope CurrentUser. {1}' -f $Scope, $_.Exception.Message) })
        return
    } catch {
        # A Group Policy setting at a more specific scope overrides ours: PowerShell says so.
        if ($_.FullyQualifiedErrorId -notmatch 'ExecutionPolicyOverride') { throw }
    }
    $effective = Get-CalpermPersistentPolicy
    if ('RemoteSigned', 'Unrestricted', 'Bypass' -contains $effective) {
        Write-CalpermRecord ([ordered]@{ type = 'step'; step = 'execution-policy'; outcome = 'changed'; message = ('RemoteSigned set for scope {0}.' -f $Scope) })
    } else {
        Write-CalpermRecord ([ordered]@{ type = 'step'; step = 'execution-policy'; outcome = 'failed'; message = ('RemoteSigned was set for scope {0}, but a policy at a more specific scope keeps the effective policy at {1}. See Get-ExecutionPolicy -List.' -f $Scope, $effective) })
    }
}

# --- Run ------------------------------------------------------------------------------------
Write-CalpermRecord ([ordered]@{ type = 'start'; script = 'execution-policy'; monitor = $null; accessRights = $null; whatIf = $script:WhatIfMode; total = $null })
try {
    Invoke-CalpermExecutionPolicy -Scope $Scope
} catch {
    Write-CalpermUnexpected $_
}
Complete-CalpermRun
