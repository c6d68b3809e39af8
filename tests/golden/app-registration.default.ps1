<#
.SYNOPSIS
    Registers the connector's app in Microsoft Entra ID: Graph Calendars.Read, admin consent and a
    client secret (or a certificate), as the manual does in the portal.
.DESCRIPTION
    Signs in to Microsoft Graph (interactive; Application.ReadWrite.All and
    AppRoleAssignment.ReadWrite.All) and makes sure that these exist, reusing whatever is there:
      application        the app registration named AppName (accounts in this organization only);
                         found by display name, never created twice. Two apps with that name: the
                         script stops and changes nothing.
      permission         the Microsoft Graph application permission Calendars.Read, added to the
                         permissions the app already declares
      service-principal  the app's enterprise application in this tenant
      consent            admin consent: Calendars.Read assigned to the service principal
      secret             a client secret named SecretName, valid SecretMonths months; a rerun adds
                         none while one with that name is valid. With AppCertificatePath, that
                         certificate is registered instead ('certificate') and no secret is made.
    Right after a create, Entra ID may not know the new object yet for seconds to minutes: the
    calls that need it are retried (see ReplicationTimeoutSeconds) and the retries are reported.
    This script signs in to Microsoft Graph only. Exchange Online PowerShell and Microsoft Graph
    PowerShell cannot sign in within one PowerShell process with current module versions, so any
    Exchange work is a separate script, run in a new PowerShell.
    Each is reported as created, unchanged, updated, would-create (with -WhatIf), skipped or
    failed. The tenant ID, client ID, secret expiry and the connector's EWS settings follow as
    settings.

    The secret is shown once on the console when that is a terminal (ShowSecret) and, with
    SecretFile, written to that file, readable only by you from the moment it exists. It is in no
    record, warning or log, and it cannot be read back later.
    If a transcript is running (Start-Transcript), the console line ends up in it too.
.PARAMETER AppName
    Display name of the app registration.
.PARAMETER SecretName
    Display name of the client secret.
.PARAMETER SecretMonths
    Lifetime of the client secret in months. The Entra admin center allows at most 24 and
    Microsoft recommends less than 12; a tenant policy may cap it.
.PARAMETER SecretFile
    Also write the secret to this new file, readable only by you (never overwritten; refused in a
    folder other users can write to). Empty: the console only.
.PARAMETER ShowSecret
    'auto': show the secret on the console only when the output is a terminal. 'yes': always.
    'no': never (then SecretFile is needed, or no secret is made).
.PARAMETER AppCertificatePath
    A certificate's public key (.cer or .pem) to register on the app instead of a client secret.
.PARAMETER RetryDelayMs
    First wait in milliseconds before a call on a new object is retried; it doubles each time (at
    most 60 s apart).
.PARAMETER ReplicationTimeoutSeconds
    How long in all to keep retrying a call while Entra ID replicates a new object.
.PARAMETER RecordMarker
    Set by calperm: report results as JSON lines starting with this marker. Leave empty when
    running the script by hand; results are then PowerShell objects.
.EXAMPLE
    .\app-registration.ps1 -WhatIf
    Shows what would be created, changes nothing.
.EXAMPLE
    .\app-registration.ps1 -SecretMonths 12 -SecretFile .\calendar-sync.secret
.NOTES
    Needs the modules Microsoft.Graph.Authentication and Microsoft.Graph.Applications
    (Install-Module Microsoft.Graph.Authentication, Microsoft.Graph.Applications -Scope CurrentUser).
    It reports ClientId, ServicePrincipalId and TenantId as outputs for the next script.
    Rendered by calperm 0.1.0. Render it again with `calperm render app-registration`,
    or run it with `calperm run app-registration`. It runs unchanged on
    Windows PowerShell 5.1 and PowerShell 7.4 or later (ExchangeOnlineManagement 3.10 lists 7.6); on
    other versions it warns.
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [string] $AppName = 'Exchange calendar synchronization',
    [string] $SecretName = 'Exchange calendar synchronization secret',
    [ValidateRange(1, 1200)] [int] $SecretMonths = 36,
    [string] $SecretFile = '',
    [ValidateSet('auto', 'yes', 'no')] [string] $ShowSecret = 'auto',
    [string] $AppCertificatePath = '',
    [ValidateRange(0, 60000)] [int] $RetryDelayMs = 1000,
    [ValidateRange(0, 86400)] [int] $ReplicationTimeoutSeconds = 300,
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

# --- Step, item and setting records ---------------------------------------------------------
# A step's outcome: ok, changed, unchanged, not-applicable, would-change, skipped, failed.
# An item's outcome: created, unchanged, updated, would-create, would-update, skipped, failed.
$script:StepStatus = @{}
$script:StepItems = New-Object System.Collections.ArrayList
# The message of the first item since the step began (setup uses it as the step's message).
$script:StepFirstMessage = $null

function Write-CalpermStep {
    param([string] $Step, [string] $Outcome, $Message = $null)
    $script:StepStatus[$Step] = $Outcome
    Write-CalpermRecord ([ordered]@{ type = 'step'; step = $Step; outcome = $Outcome; message = $Message })
}

# Retries: calls retried because Entra had not replicated a new object yet (only when any).
function Write-CalpermItem {
    param([string] $Item, [string] $Outcome, $Name = $null, $Id = $null, $Message = $null, [int] $Retries = 0)
    if ($script:StepItems.Count -eq 0) { $script:StepFirstMessage = $Message }
    [void]$script:StepItems.Add($Outcome)
    if ($null -ne $Id) { $Id = [string]$Id }
    $record = [ordered]@{ type = 'item'; item = $Item; outcome = $Outcome; name = $Name; id = $Id; message = $Message }
    if ($Retries -gt 0) { $record['retries'] = $Retries }
    Write-CalpermRecord $record
}

# A value the next script of a workflow takes as its parameter of the same name (ClientId,
# ServicePrincipalId, TenantId): calperm passes it on; by hand, pass it yourself. Never a secret.
function Write-CalpermOutput {
    param([string] $Name, [string] $Value)
    Write-CalpermRecord ([ordered]@{ type = 'output'; name = $Name; value = $Value })
}

function Write-CalpermSetting {
    param([string] $Name, [string] $Value, $Note = $null)
    Write-CalpermRecord ([ordered]@{ type = 'setting'; name = $Name; value = $Value; note = $Note })
}

# What a list of item outcomes adds up to, as a step outcome.
function Get-CalpermStepOutcome {
    param([string[]] $Outcomes)
    $Outcomes = @($Outcomes | Where-Object { $_ })
    if ($Outcomes -contains 'failed') { return 'failed' }
    if ($Outcomes -contains 'created' -or $Outcomes -contains 'updated') { return 'changed' }
    if ($Outcomes -contains 'would-create' -or $Outcomes -contains 'would-update') { return 'would-change' }
    if (@($Outcomes | Where-Object { $_ -ne 'skipped' }).Count -eq 0) { return 'skipped' }
    'unchanged'
}

# A date as UTC, whether Graph or Exchange returned a DateTime, a DateTimeOffset or ISO 8601 text.
function ConvertTo-CalpermUtc {
    param($Value)
    if ($null -eq $Value -or [string]$Value -eq '') { return $null }
    if ($Value -is [datetime]) { return $Value.ToUniversalTime() }
    if ($Value -is [System.DateTimeOffset]) { return $Value.UtcDateTime }
    [System.DateTimeOffset]::Parse([string]$Value, [System.Globalization.CultureInfo]::InvariantCulture).UtcDateTime
}

function Format-CalpermDate {
    param($Value)
    $utc = ConvertTo-CalpermUtc $Value
    if ($null -eq $utc) { return '' }
    $utc.ToString('yyyy-MM-ddTHH:mm:ssZ', [System.Globalization.CultureInfo]::InvariantCulture)
}

# --- Entra replication ------------------------------------------------------------------------
# Right after an object is created in Entra ID, calls that reference it fail for seconds to
# minutes (field-notes §5): Graph answers Request_BadRequest "The appId '<id>' of the service
# principal does not reference a valid application object." or Request_ResourceNotFound
# "Resource '<id>' does not exist or one of its queried reference-property objects are not
# present.", and Exchange's New-ServicePrincipal fails until Exchange sees the new service
# principal. Such a call is retried with exponential back-off (RetryDelayMs, doubling, at most
# 60 s apart) for up to ReplicationTimeoutSeconds in all; the item's record counts the retries.
$script:ReplicationRetries = 0

# Whether an error is one of those replication errors. Service 'graph' or 'exchange'.
function Test-CalpermReplicationError {
    param($ErrorRecord, [string] $Service)
    $text = [string]$ErrorRecord.Exception.Message
    if ($Service -eq 'exchange') {
        # UNCONFIRMED: no public source quotes Exchange's text for a service principal it does not
        # see yet; any not-found error of New-ServicePrincipal is taken for it, because the
        # service principal was just read from (or made in) Entra ID.
        return ($text -match 'ManagementObjectNotFoundException' -or $text -match "couldn't be found" -or $text -match 'not found' -or $text -match "doesn't exist")
    }
    ($text -match 'does not reference a valid application object' -or $text -match 'Request_ResourceNotFound' -or
        $text -match 'does not exist or one of its queried reference-property objects are not present')
}

# Runs $Call (which must use -ErrorAction Stop) and returns its result, retrying replication
# errors; $script:ReplicationRetries says how often. When the time is up, it throws a message that
# names what to do.
function Invoke-CalpermAfterCreate {
    param([string] $What, [string] $Service, [scriptblock] $Call)
    $script:ReplicationRetries = 0
    $delay = [Math]::Max(1, $RetryDelayMs)
    $started = [DateTime]::UtcNow
    while ($true) {
        try {
            return (& $Call)
        } catch {
            if (-not (Test-CalpermReplicationError $_ $Service)) { throw }
            $elapsed = ([DateTime]::UtcNow - $started).TotalSeconds
            if ($elapsed + ($delay / 1000.0) -gt $ReplicationTimeoutSeconds) {
                throw ("{0} was still not replicated after {1:0} s and {2} retries ({3}). Entra ID can take several minutes: run the same command again later (calperm: add --resume JOURNAL to skip what is done), or wait longer with ReplicationTimeoutSeconds (calperm: --replication-timeout SECONDS)." -f $What, $elapsed, $script:ReplicationRetries, $_.Exception.Message)
            }
            $script:ReplicationRetries++
            Write-Verbose ('{0} is not replicated yet; retry {1} in {2} ms' -f $What, $script:ReplicationRetries, $delay)
            Start-Sleep -Milliseconds $delay
            $delay = [Math]::Min(60000, $delay * 2)
        }
    }
}

# --- App registration (Microsoft Graph PowerShell) ------------------------------------------
# The manual's portal clicks, done with Microsoft.Graph.Authentication and
# Microsoft.Graph.Applications (reference: entra.md §1): the app, its service principal, the Graph
# application permission Calendars.Read, admin consent (the app role assignment) and a client
# secret or a certificate. Everything is looked up first and reused: a rerun creates nothing.
$script:GraphResourceAppId = '00000003-0000-0000-c000-000000000000'
$script:CalendarsReadRoleId = '798ee544-9d2d-430c-a058-570e29e34338'
$script:EwsUrl = 'https://outlook.office365.com/EWS/Exchange.asmx'
$script:GraphConnected = $false
# What the registration found or made, for the steps after it. AppWhatIf / SpWhatIf: -WhatIf
# and the object does not exist yet, so the steps after it report would-create.
$script:Reg = @{ App = $null; Sp = $null; TenantId = $null; AppWhatIf = $false; SpWhatIf = $false; Credential = $null }

# An OData string literal for a Graph -Filter: a single quote inside is doubled
# (displayName eq 'O''Brien app'). Built at run time from the value, never pasted into code.
function ConvertTo-CalpermODataString {
    param([string] $Value)
    "'" + ($Value -replace "'", "''") + "'"
}

# Signs in to Microsoft Graph. Returns $null, or why it could not (Kind, Message).
function Connect-CalpermGraph {
    try {
        Import-Module Microsoft.Graph.Authentication, Microsoft.Graph.Applications -ErrorAction Stop
    } catch {
        return @{ Kind = 'module-missing'; Message = ('The Microsoft Graph PowerShell modules could not be loaded: {0} Install them with: Install-Module Microsoft.Graph.Authentication, Microsoft.Graph.Applications -Scope CurrentUser' -f $_.Exception.Message) }
    }
    try {
        # Delegated scopes of Microsoft's "grant app roles" tutorial (entra.md §1.1). The signed-in
        # admin also needs a role that may consent, e.g. Privileged Role Administrator.
        $null = Connect-MgGraph -Scopes 'Application.ReadWrite.All', 'AppRoleAssignment.ReadWrite.All' -NoWelcome -ErrorAction Stop
        $script:GraphConnected = $true
        $script:Reg.TenantId = [string](Get-MgContext).TenantId
    } catch {
        return @{ Kind = 'connect'; Message = ('Could not sign in to Microsoft Graph: ' + $_.Exception.Message) }
    }
    $null
}

function Disconnect-CalpermGraph {
    if ($script:GraphConnected) {
        $null = Disconnect-MgGraph -ErrorAction SilentlyContinue
        $script:GraphConnected = $false
    }
}

# The RequiredResourceAccess entry that declares Graph Calendars.Read (application, Type Role).
function New-CalpermGraphAccess {
    @{ ResourceAppId = $script:GraphResourceAppId; ResourceAccess = @(@{ Id = $script:CalendarsReadRoleId; Type = 'Role' }) }
}

# 1. The app (found by display name, or created) with the permission declared, and its service
# principal. Two apps with the name: nothing is touched and the run (or setup's step) stops.
function Invoke-CalpermAppObjects {
    $permission = 'Microsoft Graph Calendars.Read (application)'
    try {
        $found = @(Get-MgApplication -Filter ('displayName eq ' + (ConvertTo-CalpermODataString $AppName)) -All -ErrorAction Stop)
    } catch {
        Write-CalpermItem -Item 'application' -Outcome 'failed' -Name $AppName -Message ('Could not look up the app: ' + $_.Exception.Message)
        Write-CalpermItem -Item 'service-principal' -Outcome 'skipped' -Message 'The app could not be looked up.'
        return
    }
    if ($found.Count -gt 1) {
        $ids = @($found | ForEach-Object { 'object ID {0} (client ID {1})' -f $_.Id, $_.AppId }) -join '; '
        $message = "{0} apps are named '{1}': {2}. Nothing was changed. Delete or rename the extra ones (Entra admin center, App registrations), or choose another AppName." -f $found.Count, $AppName, $ids
        Write-CalpermItem -Item 'application' -Outcome 'failed' -Name $AppName -Message $message
        Stop-CalpermRun -Kind 'app-ambiguous' -Message $message
    }
    if ($found.Count -eq 1) {
        $app = $found[0]
        $script:Reg.App = $app
        Write-CalpermItem -Item 'application' -Outcome 'unchanged' -Name $AppName -Id $app.AppId -Message ('Existing app reused (object ID {0}).' -f $app.Id)
        Invoke-CalpermAppPermission -App $app -Name $permission
    } elseif ($script:Cmdlet.ShouldProcess($AppName, 'Register the app with the Graph permission Calendars.Read (New-MgApplication)')) {
        try {
            $app = New-MgApplication -DisplayName $AppName -SignInAudience 'AzureADMyOrg' -RequiredResourceAccess @(New-CalpermGraphAccess) -ErrorAction Stop
        } catch {
            Write-CalpermItem -Item 'application' -Outcome 'failed' -Name $AppName -Message ('New-MgApplication failed: ' + $_.Exception.Message)
            Write-CalpermItem -Item 'permission' -Outcome 'skipped' -Name $permission -Id $script:CalendarsReadRoleId -Message 'The app could not be created.'
            Write-CalpermItem -Item 'service-principal' -Outcome 'skipped' -Message 'The app could not be created.'
            return
        }
        $script:Reg.App = $app
        Write-CalpermItem -Item 'application' -Outcome 'created' -Name $AppName -Id $app.AppId -Message ('Object ID {0}; accounts in this organization only (AzureADMyOrg).' -f $app.Id)
        Write-CalpermItem -Item 'permission' -Outcome 'created' -Name $permission -Id $script:CalendarsReadRoleId -Message 'Declared in RequiredResourceAccess. The declaration grants nothing by itself; admin consent does.'
    } else {
        $script:Reg.AppWhatIf = $true
        Write-CalpermItem -Item 'application' -Outcome 'would-create' -Name $AppName
        Write-CalpermItem -Item 'permission' -Outcome 'would-create' -Name $permission -Id $script:CalendarsReadRoleId
    }
    Invoke-CalpermAppServicePrincipal
}

# Adds Graph Calendars.Read to an existing app's RequiredResourceAccess, keeping every other
# declared permission (Update-MgApplication replaces the whole list).
function Invoke-CalpermAppPermission {
    param($App, [string] $Name)
    $entries = @($App.RequiredResourceAccess | Where-Object { $_ })
    foreach ($entry in $entries) {
        if ([string]$entry.ResourceAppId -ne $script:GraphResourceAppId) { continue }
        foreach ($access in @($entry.ResourceAccess | Where-Object { $_ })) {
            if ([string]$access.Id -eq $script:CalendarsReadRoleId -and [string]$access.Type -eq 'Role') {
                Write-CalpermItem -Item 'permission' -Outcome 'unchanged' -Name $Name -Id $script:CalendarsReadRoleId -Message 'Already declared in RequiredResourceAccess.'
                return
            }
        }
    }
    $list = New-Object System.Collections.ArrayList
    $added = $false
    $others = 0
    foreach ($entry in $entries) {
        $access = @($entry.ResourceAccess | Where-Object { $_ } | ForEach-Object { @{ Id = [string]$_.Id; Type = [string]$_.Type } })
        $others += $access.Count
        if (-not $added -and [string]$entry.ResourceAppId -eq $script:GraphResourceAppId) {
            $access = @($access) + @(@{ Id = $script:CalendarsReadRoleId; Type = 'Role' })
            $added = $true
        }
        [void]$list.Add(@{ ResourceAppId = [string]$entry.ResourceAppId; ResourceAccess = $access })
    }
    if (-not $added) { [void]$list.Add((New-CalpermGraphAccess)) }
    if (-not $script:Cmdlet.ShouldProcess($AppName, 'Add the Graph permission Calendars.Read (Update-MgApplication)')) {
        Write-CalpermItem -Item 'permission' -Outcome 'would-update' -Name $Name -Id $script:CalendarsReadRoleId
        return
    }
    try {
        $null = Update-MgApplication -ApplicationId $App.Id -RequiredResourceAccess @($list) -ErrorAction Stop
        Write-CalpermItem -Item 'permission' -Outcome 'updated' -Name $Name -Id $script:CalendarsReadRoleId -Message ('Added to RequiredResourceAccess; the {0} permission(s) already declared were kept.' -f $others)
    } catch {
        Write-CalpermItem -Item 'permission' -Outcome 'failed' -Name $Name -Id $script:CalendarsReadRoleId -Message ('Update-MgApplication failed: ' + $_.Exception.Message)
    }
}

function Invoke-CalpermAppServicePrincipal {
    $app = $script:Reg.App
    if (-not $app) {
        if ($script:Reg.AppWhatIf) {
            $script:Reg.SpWhatIf = $true
            Write-CalpermItem -Item 'service-principal' -Outcome 'would-create' -Name $AppName
        }
        return
    }
    try {
        $found = @(Get-MgServicePrincipal -Filter ('appId eq ' + (ConvertTo-CalpermODataString ([string]$app.AppId))) -ErrorAction Stop)
    } catch {
        Write-CalpermItem -Item 'service-principal' -Outcome 'failed' -Name $AppName -Message ('Could not look up the service principal: ' + $_.Exception.Message)
        return
    }
    if ($found.Count -gt 0) {
        $script:Reg.Sp = $found[0]
        Write-CalpermItem -Item 'service-principal' -Outcome 'unchanged' -Name $AppName -Id $found[0].Id -Message 'Existing service principal (enterprise application) reused.'
        return
    }
    if (-not $script:Cmdlet.ShouldProcess($AppName, 'Create the service principal (New-MgServicePrincipal)')) {
        $script:Reg.SpWhatIf = $true
        Write-CalpermItem -Item 'service-principal' -Outcome 'would-create' -Name $AppName
        return
    }
    try {
        $sp = Invoke-CalpermAfterCreate -What ('The app {0}' -f $app.AppId) -Service graph -Call { New-MgServicePrincipal -AppId ([string]$app.AppId) -ErrorAction Stop }
        $script:Reg.Sp = $sp
        Write-CalpermItem -Item 'service-principal' -Outcome 'created' -Name $AppName -Id $sp.Id -Message 'The enterprise application for this tenant.' -Retries $script:ReplicationRetries
    } catch {
        Write-CalpermItem -Item 'service-principal' -Outcome 'failed' -Name $AppName -Message ('New-MgServicePrincipal failed: ' + $_.Exception.Message) -Retries $script:ReplicationRetries
    }
}

# 2. Admin consent: the app role assignment of Calendars.Read to the app's service principal,
# made on the Microsoft Graph service principal (appRoleAssignedTo, entra.md §1.2). Restricted to
# a group, it is not made: grants add up, and a tenant-wide one reaches every mailbox (§3.2).
function Invoke-CalpermAppConsent {
    param([bool] $Restricted)
    $name = 'Admin consent: Microsoft Graph Calendars.Read'
    $skipReason = 'Not granted tenant-wide on purpose: the app is limited to the RestrictToGroup group with RBAC for Applications, and a tenant-wide consent would still reach every mailbox (the two grants add up).'
    $sp = $script:Reg.Sp
    if (-not $sp) {
        if ($Restricted) {
            Write-CalpermItem -Item 'consent' -Outcome 'skipped' -Name $name -Message $skipReason
        } elseif ($script:Reg.SpWhatIf) {
            Write-CalpermItem -Item 'consent' -Outcome 'would-create' -Name $name
        } else {
            Write-CalpermItem -Item 'consent' -Outcome 'skipped' -Name $name -Message 'The app has no service principal (see above).'
        }
        return
    }
    try {
        $graphSp = @(Get-MgServicePrincipal -Filter ('appId eq ' + (ConvertTo-CalpermODataString $script:GraphResourceAppId)) -ErrorAction Stop) | Select-Object -First 1
        if (-not $graphSp) { throw ('The Microsoft Graph service principal (appId {0}) is not in this tenant.' -f $script:GraphResourceAppId) }
        $existing = @(Invoke-CalpermAfterCreate -What ('The service principal {0}' -f $sp.Id) -Service graph -Call { Get-MgServicePrincipalAppRoleAssignment -ServicePrincipalId $sp.Id -All -ErrorAction Stop } |
                Where-Object { [string]$_.ResourceId -eq [string]$graphSp.Id -and [string]$_.AppRoleId -eq $script:CalendarsReadRoleId })
    } catch {
        Write-CalpermItem -Item 'consent' -Outcome 'failed' -Name $name -Message ('Could not read the app role assignments: ' + $_.Exception.Message)
        return
    }
    if ($Restricted) {
        if ($existing.Count -gt 0) {
            $message = 'Not granted tenant-wide (RestrictToGroup), but a tenant-wide assignment already exists (ID {0}): while it exists the app reads every mailbox whatever the RBAC restriction says. To make the restriction effective, remove it: Remove-MgServicePrincipalAppRoleAssignment -ServicePrincipalId {1} -AppRoleAssignmentId {0}' -f $existing[0].Id, $sp.Id
            Write-Warning $message
            Write-CalpermItem -Item 'consent' -Outcome 'skipped' -Name $name -Id $existing[0].Id -Message $message
        } else {
            Write-CalpermItem -Item 'consent' -Outcome 'skipped' -Name $name -Message $skipReason
        }
        return
    }
    if ($existing.Count -gt 0) {
        Write-CalpermItem -Item 'consent' -Outcome 'unchanged' -Name $name -Id $existing[0].Id -Message 'Already granted (app role assignment).'
        return
    }
    if (-not $script:Cmdlet.ShouldProcess($AppName, 'Grant admin consent for Calendars.Read (New-MgServicePrincipalAppRoleAssignedTo)')) {
        Write-CalpermItem -Item 'consent' -Outcome 'would-create' -Name $name
        return
    }
    try {
        $assignment = Invoke-CalpermAfterCreate -What ('The service principal {0}' -f $sp.Id) -Service graph -Call { New-MgServicePrincipalAppRoleAssignedTo -ServicePrincipalId $graphSp.Id -PrincipalId $sp.Id -ResourceId $graphSp.Id -AppRoleId $script:CalendarsReadRoleId -ErrorAction Stop }
        Write-CalpermItem -Item 'consent' -Outcome 'created' -Name $name -Id $assignment.Id -Message 'Granted: the app may read the calendars of every mailbox in the organization, effective immediately.' -Retries $script:ReplicationRetries
    } catch {
        Write-CalpermItem -Item 'consent' -Outcome 'failed' -Name $name -Message ('New-MgServicePrincipalAppRoleAssignedTo failed: ' + $_.Exception.Message) -Retries $script:ReplicationRetries
    }
}

# 3. The credential the connector signs in with: the certificate in AppCertificatePath, or else a
# client secret.
function Invoke-CalpermAppCredential {
    if ($AppCertificatePath) { Invoke-CalpermAppCertificate } else { Invoke-CalpermAppSecret }
}

function Invoke-CalpermAppSecret {
    $app = $script:Reg.App
    if ($SecretMonths -gt 24) {
        Write-Warning ('SecretMonths is {0}: the Entra admin center offers at most 24 months, Microsoft recommends less than 12, and recommends a certificate instead of a secret (AppCertificatePath). A tenant app management policy may also reject this lifetime.' -f $SecretMonths)
    }
    if (-not $app) {
        if ($script:Reg.AppWhatIf) {
            Write-CalpermItem -Item 'secret' -Outcome 'would-create' -Name $SecretName -Message ('Lifetime {0} months.' -f $SecretMonths)
            if ($SecretFile) { Write-CalpermItem -Item 'secret-file' -Outcome 'would-create' -Name $SecretFile }
        } else {
            Write-CalpermItem -Item 'secret' -Outcome 'skipped' -Name $SecretName -Message 'There is no app (see above).'
        }
        return
    }
    # Add-MgApplicationPassword only ever adds: existing secrets stay. A rerun adds none while one
    # with this name is still valid, because a secret's text cannot be read back afterwards.
    $now = [DateTime]::UtcNow
    $valid = @($app.PasswordCredentials | Where-Object { $_ -and [string]$_.DisplayName -eq $SecretName -and (ConvertTo-CalpermUtc $_.EndDateTime) -gt $now } |
            Sort-Object { ConvertTo-CalpermUtc $_.EndDateTime } -Descending)
    if ($valid.Count -gt 0) {
        $expires = Format-CalpermDate $valid[0].EndDateTime
        $script:Reg.Credential = @{ Kind = 'secret'; Expires = $expires; Where = 'the existing secret (its text cannot be read back)' }
        Write-CalpermItem -Item 'secret' -Outcome 'unchanged' -Name $SecretName -Id $valid[0].KeyId -Message ("A secret with this name is valid until {0}. Its text cannot be read back: for a new one, run again with another SecretName, or remove the old one first (Remove-MgApplicationPassword -ApplicationId {1} -KeyId {2})." -f $expires, $app.Id, $valid[0].KeyId)
        if ($SecretFile) { Write-CalpermItem -Item 'secret-file' -Outcome 'skipped' -Name $SecretFile -Message 'No new secret, nothing to write.' }
        return
    }
    $show = Test-CalpermShowSecret
    if (-not $show -and -not $SecretFile) {
        Write-CalpermItem -Item 'secret' -Outcome 'failed' -Name $SecretName -Message 'No secret was created: it would be shown nowhere (the console is not a terminal and there is no SecretFile). Give a SecretFile (calperm: --secret-file FILE), or ShowSecret yes (calperm: --show-secret).'
        return
    }
    $path = $null
    if ($SecretFile) {
        $path = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($SecretFile)
        if (Test-Path -LiteralPath $path) {
            Write-CalpermSecretFileRefused -Why 'the SecretFile already exists and is never overwritten. Move it away or choose another SecretFile.' -FileMessage 'The file exists; not overwritten.'
            return
        }
        $folder = [System.IO.Path]::GetDirectoryName($path)
        if (Test-CalpermFolderWritableByOthers -Folder $folder) {
            $why = ('other users can write to the folder {0}, so they could put their own file in place of the SecretFile. Choose a folder only you can write to.' -f $folder)
            Write-CalpermSecretFileRefused -Why $why -FileMessage 'Its folder is writable by other users.'
            return
        }
    }
    $end = [DateTime]::UtcNow.AddMonths($SecretMonths)
    if (-not $script:Cmdlet.ShouldProcess($AppName, ('Add the client secret ''{0}'', valid {1} months (Add-MgApplicationPassword)' -f $SecretName, $SecretMonths))) {
        Write-CalpermItem -Item 'secret' -Outcome 'would-create' -Name $SecretName -Message ('Lifetime {0} months.' -f $SecretMonths)
        if ($path) { Write-CalpermItem -Item 'secret-file' -Outcome 'would-create' -Name $SecretFile }
        return
    }
    # The file comes first, empty, private from the moment it exists and held open, so a secret
    # is never made that cannot be stored, and it goes into this very file and no other.
    $stream = $null
    if ($path) {
        try {
            $stream = New-CalpermPrivateFile -Path $path
        } catch {
            Write-CalpermSecretFileRefused -Why ('the SecretFile could not be created readable only by you: ' + $_.Exception.Message) -FileMessage $_.Exception.Message
            return
        }
    }
    # The secret is in the answer of this one call and in nothing else: no record, warning,
    # verbose or debug message carries it (debug output of the Graph SDK would print the HTTP
    # response, so it is silenced here whatever the caller asked for).
    $DebugPreference = 'SilentlyContinue'
    $VerbosePreference = 'SilentlyContinue'
    $written = $false
    try {
        try {
            $created = Invoke-CalpermAfterCreate -What ('The app {0}' -f $app.AppId) -Service graph -Call { Add-MgApplicationPassword -ApplicationId $app.Id -PasswordCredential @{ DisplayName = $SecretName; EndDateTime = $end } -ErrorAction Stop }
        } catch {
            if ($stream) { $stream.Dispose(); $stream = $null; Remove-CalpermFile -Path $path }
            Write-CalpermItem -Item 'secret' -Outcome 'failed' -Name $SecretName -Retries $script:ReplicationRetries -Message ('Add-MgApplicationPassword failed: {0} If the lifetime was refused, lower SecretMonths (calperm: --secret-months), e.g. to 12 or 24; a tenant app management policy may set the maximum.' -f $_.Exception.Message)
            if ($path) { Write-CalpermItem -Item 'secret-file' -Outcome 'skipped' -Name $SecretFile -Message 'No secret was created; the empty file was removed.' }
            return
        }
        $expires = Format-CalpermDate $created.EndDateTime
        if (-not $expires) { $expires = Format-CalpermDate $end }
        $keyId = [string]$created.KeyId
        if ($show) { Show-CalpermSecret -Text ([string]$created.SecretText) -Expires $expires }
        if ($stream) {
            try {
                Write-CalpermPrivateText -Stream $stream -Text ([string]$created.SecretText)
                $written = $true
            } catch {
                $shown = 'not shown anywhere'
                if ($show) { $shown = 'shown on the console' }
                Write-CalpermItem -Item 'secret-file' -Outcome 'failed' -Name $SecretFile -Message ('The secret was created ({0}), but could not be written to the file: {1}' -f $shown, $_.Exception.Message)
            }
        }
        $created = $null
    } finally {
        if ($stream) { $stream.Dispose() }
    }
    $where = 'not shown and not stored: remove it and make another (Remove-MgApplicationPassword)'
    if ($show -and $written) { $where = 'shown once on the console and written to the SecretFile' } elseif ($show) { $where = 'shown once on the console' } elseif ($written) { $where = 'written to the SecretFile only (the console is not a terminal)' }
    $script:Reg.Credential = @{ Kind = 'secret'; Expires = $expires; Where = $where }
    $outcome = 'created'
    if (-not $show -and -not $written) { $outcome = 'failed' }
    Write-CalpermItem -Item 'secret' -Outcome $outcome -Name $SecretName -Id $keyId -Message ('Valid until {0} ({1} months); {2}.' -f $expires, $SecretMonths, $where) -Retries $script:ReplicationRetries
    if ($written) { Write-CalpermItem -Item 'secret-file' -Outcome 'created' -Name $SecretFile -Message 'Readable only by you.' }
}

# No secret was made because the SecretFile cannot be used safely: the secret and the file both
# fail, saying why.
function Write-CalpermSecretFileRefused {
    param([string] $Why, [string] $FileMessage)
    Write-CalpermItem -Item 'secret' -Outcome 'failed' -Name $SecretName -Message ('No secret was created: ' + $Why)
    Write-CalpermItem -Item 'secret-file' -Outcome 'failed' -Name $SecretFile -Message $FileMessage
}

# Whether the secret goes to the console: ShowSecret yes or no, or with auto, when the output is
# a terminal (calperm passes yes or no, from its own standard error and --show-secret).
function Test-CalpermShowSecret {
    if ($ShowSecret -eq 'yes') { return $true }
    if ($ShowSecret -eq 'no') { return $false }
    -not [Console]::IsOutputRedirected
}

# The one place the secret text goes besides the SecretFile: the console, once, with Write-Host
# (run by calperm, this is passed through to the terminal; it is never a record).
function Show-CalpermSecret {
    param([string] $Text, [string] $Expires)
    Write-Host ''
    Write-Host '=============== CLIENT SECRET: copy it now, it cannot be shown again ==============='
    Write-Host ('  Name:     {0}' -f $SecretName)
    Write-Host ('  Expires:  {0}' -f $Expires)
    Write-Host ('  Secret:   {0}' -f $Text)
    Write-Host '  Enter it in the connector with the tenant ID and client ID listed below.'
    Write-Host '===================================================================================='
    Write-Host ''
}

# Whether users other than the owner may write to a folder (group or others write bit), so they
# could swap a file in it. Unix with .NET 7 or later (File.GetUnixFileMode, found by reflection so
# Windows PowerShell 5.1 parses this unchanged); on Windows the folder's ACL is not inspected.
function Test-CalpermFolderWritableByOthers {
    param([string] $Folder)
    if ($script:OnWindows -or -not $Folder) { return $false }
    $method = [System.IO.File].GetMethod('GetUnixFileMode', [type[]]@([string]))
    if (-not $method) { return $false }
    $mode = [int]$method.Invoke($null, [object[]]@($Folder))
    # GroupWrite (0o020 = 16) | OtherWrite (0o002 = 2).
    ($mode -band 18) -ne 0
}

# Creates Path, never replacing anything already there (CreateNew: an existing file or symbolic
# link makes it fail), readable and writable only by the current user from the moment it exists,
# and returns the open stream. On Windows the owner-only ACL (no inherited entries) is passed to
# the call that creates the file; elsewhere the mode 0600 is (FileStreamOptions.UnixCreateMode,
# .NET 7 / PowerShell 7.3 or later; the umask can only take bits away). The Windows branches were
# not run here (UNCONFIRMED): they follow the .NET API reference (FileSystemAclExtensions.Create,
# and the .NET Framework FileStream constructor that takes a FileSecurity).
function New-CalpermPrivateFile {
    param([string] $Path)
    if ($script:OnWindows) {
        $acl = New-Object -TypeName System.Security.AccessControl.FileSecurity
        $acl.SetAccessRuleProtection($true, $false)
        $me = [System.Security.Principal.WindowsIdentity]::GetCurrent().User
        $rule = New-Object -TypeName System.Security.AccessControl.FileSystemAccessRule -ArgumentList $me, ([System.Security.AccessControl.FileSystemRights]::FullControl), ([System.Security.AccessControl.AccessControlType]::Allow)
        $acl.AddAccessRule($rule)
        $rights = [System.Security.AccessControl.FileSystemRights]::Write
        $extensions = 'System.IO.FileSystemAclExtensions' -as [type]
        $create = $null
        if ($extensions) {
            $create = $extensions.GetMethod('Create', [type[]]@([System.IO.FileInfo], [System.IO.FileMode], [System.Security.AccessControl.FileSystemRights], [System.IO.FileShare], [int], [System.IO.FileOptions], [System.Security.AccessControl.FileSecurity]))
        }
        if ($create) {
            # PowerShell 7 (.NET): FileSystemAclExtensions.Create applies the ACL as it creates.
            $info = New-Object -TypeName System.IO.FileInfo -ArgumentList $Path
            return $create.Invoke($null, [object[]]@($info, [System.IO.FileMode]::CreateNew, $rights, [System.IO.FileShare]::None, 4096, [System.IO.FileOptions]::None, $acl))
        }
        # Windows PowerShell 5.1 (.NET Framework): the FileStream constructor that takes the ACL.
        return New-Object -TypeName System.IO.FileStream -ArgumentList $Path, ([System.IO.FileMode]::CreateNew), $rights, ([System.IO.FileShare]::None), 4096, ([System.IO.FileOptions]::None), $acl
    }
    $optionsType = 'System.IO.FileStreamOptions' -as [type]
    $modeType = 'System.IO.UnixFileMode' -as [type]
    if (-not $optionsType -or -not $modeType) {
        throw 'PowerShell 7.3 or later is needed to create a file that is readable only by you from the moment it exists (FileStreamOptions.UnixCreateMode).'
    }
    $options = New-Object -TypeName System.IO.FileStreamOptions
    $options.Mode = [System.IO.FileMode]::CreateNew
    $options.Access = [System.IO.FileAccess]::Write
    $options.Share = [System.IO.FileShare]::None
    # UserRead | UserWrite = 0o600 = 384.
    $options.UnixCreateMode = [System.Enum]::ToObject($modeType, 384)
    New-Object -TypeName System.IO.FileStream -ArgumentList $Path, $options
}

# Deletes a file this script created (the empty SecretFile after a failure); never fails.
function Remove-CalpermFile {
    param([string] $Path)
    try { [System.IO.File]::Delete($Path) } catch { Write-Verbose ('Could not delete {0}: {1}' -f $Path, $_.Exception.Message) }
}

# Writes the text through the stream New-CalpermPrivateFile opened, as UTF-8 without BOM and
# without a line break.
function Write-CalpermPrivateText {
    param([System.IO.Stream] $Stream, [string] $Text)
    $bytes = (New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false).GetBytes($Text)
    $Stream.Write($bytes, 0, $bytes.Length)
    $Stream.Flush()
}

# A hex thumbprint from a KeyCredential's CustomKeyIdentifier (bytes, or Base64 text).
function ConvertTo-CalpermHex {
    param($Value)
    if ($null -eq $Value) { return '' }
    $bytes = $null
    if ($Value -is [byte[]]) {
        $bytes = $Value
    } elseif ([string]$Value -match '^[0-9A-Fa-f]{40}$') {
        # Already a hex thumbprint (it would also decode as Base64).
        return ([string]$Value).ToUpperInvariant()
    } else {
        try { $bytes = [System.Convert]::FromBase64String([string]$Value) } catch { return ([string]$Value).ToUpperInvariant() }
    }
    ([System.BitConverter]::ToString($bytes) -replace '-', '').ToUpperInvariant()
}

# A certificate (public key, .cer or .pem) as the app's KeyCredential, instead of a secret.
function Invoke-CalpermAppCertificate {
    $app = $script:Reg.App
    $path = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($AppCertificatePath)
    try {
        $certificate = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList $path
    } catch {
        Write-CalpermItem -Item 'certificate' -Outcome 'failed' -Name $AppCertificatePath -Message ('Could not read the certificate (a .cer or .pem public key is expected): ' + $_.Exception.Message)
        return
    }
    $thumbprint = $certificate.Thumbprint.ToUpperInvariant()
    $expires = Format-CalpermDate $certificate.NotAfter
    if ((ConvertTo-CalpermUtc $certificate.NotAfter) -le [DateTime]::UtcNow) {
        Write-CalpermItem -Item 'certificate' -Outcome 'failed' -Name $certificate.Subject -Id $thumbprint -Message ('The certificate expired on {0}.' -f $expires)
        return
    }
    if (-not $app) {
        if ($script:Reg.AppWhatIf) {
            Write-CalpermItem -Item 'certificate' -Outcome 'would-create' -Name $certificate.Subject -Id $thumbprint
        } else {
            Write-CalpermItem -Item 'certificate' -Outcome 'skipped' -Name $certificate.Subject -Id $thumbprint -Message 'There is no app (see above).'
        }
        return
    }
    $keys = @($app.KeyCredentials | Where-Object { $_ })
    $same = @($keys | Where-Object { (ConvertTo-CalpermHex $_.CustomKeyIdentifier) -eq $thumbprint })
    if ($same.Count -gt 0) {
        $script:Reg.Credential = @{ Kind = 'certificate'; Thumbprint = $thumbprint; Expires = $expires }
        Write-CalpermItem -Item 'certificate' -Outcome 'unchanged' -Name $certificate.Subject -Id $thumbprint -Message ('Already registered; valid until {0}.' -f $expires)
        return
    }
    if (-not $script:Cmdlet.ShouldProcess($AppName, ('Register the certificate {0} (Update-MgApplication -KeyCredentials)' -f $thumbprint))) {
        Write-CalpermItem -Item 'certificate' -Outcome 'would-create' -Name $certificate.Subject -Id $thumbprint
        return
    }
    $key = @{
        Type                = 'AsymmetricX509Cert'
        Usage               = 'Verify'
        Key                 = $certificate.RawData
        CustomKeyIdentifier = $certificate.GetCertHash()
        DisplayName         = $certificate.Subject
        StartDateTime       = (ConvertTo-CalpermUtc $certificate.NotBefore)
        EndDateTime         = (ConvertTo-CalpermUtc $certificate.NotAfter)
    }
    # Update-MgApplication -KeyCredentials replaces the whole list, so the certificates already
    # there are sent back with it. Their public keys come only from a read that selects
    # keyCredentials (field-notes §6); one without its key stops this before anything is changed.
    $list = New-Object System.Collections.ArrayList
    if ($keys.Count -gt 0) {
        try {
            $current = Get-MgApplication -ApplicationId $app.Id -Property keyCredentials -ErrorAction Stop
        } catch {
            Write-CalpermItem -Item 'certificate' -Outcome 'failed' -Name $certificate.Subject -Id $thumbprint -Message ('Could not read the certificates the app has (Get-MgApplication -Property keyCredentials); nothing was changed: ' + $_.Exception.Message)
            return
        }
        foreach ($old in @($current.KeyCredentials | Where-Object { $_ })) {
            if ($null -eq $old.Key -or @($old.Key).Count -eq 0) {
                Write-CalpermItem -Item 'certificate' -Outcome 'failed' -Name $certificate.Subject -Id $thumbprint -Message ('Graph did not return the public key of the certificate {0} the app already has, and sending the list without it would remove it; nothing was changed. Upload this certificate in the Entra admin center (Certificates & secrets).' -f $old.KeyId)
                return
            }
            [void]$list.Add(@{
                    KeyId               = [string]$old.KeyId
                    Type                = [string]$old.Type
                    Usage               = [string]$old.Usage
                    Key                 = [byte[]]$old.Key
                    CustomKeyIdentifier = $old.CustomKeyIdentifier
                    DisplayName         = [string]$old.DisplayName
                    StartDateTime       = (ConvertTo-CalpermUtc $old.StartDateTime)
                    EndDateTime         = (ConvertTo-CalpermUtc $old.EndDateTime)
                })
        }
    }
    [void]$list.Add($key)
    try {
        $null = Invoke-CalpermAfterCreate -What ('The app {0}' -f $app.AppId) -Service graph -Call { Update-MgApplication -ApplicationId $app.Id -KeyCredentials @($list) -ErrorAction Stop }
        $script:Reg.Credential = @{ Kind = 'certificate'; Thumbprint = $thumbprint; Expires = $expires }
        $kept = ''
        if ($list.Count -gt 1) { $kept = (' The {0} certificate(s) the app already had were kept.' -f ($list.Count - 1)) }
        Write-CalpermItem -Item 'certificate' -Outcome 'created' -Name $certificate.Subject -Id $thumbprint -Message ('Registered (public key only); valid until {0}. No client secret was made.{1}' -f $expires, $kept) -Retries $script:ReplicationRetries
    } catch {
        Write-CalpermItem -Item 'certificate' -Outcome 'failed' -Name $certificate.Subject -Id $thumbprint -Message ('Update-MgApplication failed: ' + $_.Exception.Message) -Retries $script:ReplicationRetries
    }
}

# What the next script of the workflow needs (output records; by hand, pass them as its parameters).
function Write-CalpermAppOutputs {
    if ($script:Reg.App) { Write-CalpermOutput -Name 'ClientId' -Value ([string]$script:Reg.App.AppId) }
    if ($script:Reg.Sp) { Write-CalpermOutput -Name 'ServicePrincipalId' -Value ([string]$script:Reg.Sp.Id) }
    if ($script:Reg.TenantId) { Write-CalpermOutput -Name 'TenantId' -Value ([string]$script:Reg.TenantId) }
}

# 4. What to enter in the connector, as setting records (the run's summary prints them).
function Write-CalpermAppSettings {
    param([bool] $Restricted, [string] $Group)
    $app = $script:Reg.App
    $clientId = '(assigned when the app is created)'
    if ($app) { $clientId = [string]$app.AppId }
    Write-CalpermSetting -Name 'Tenant ID' -Value $script:Reg.TenantId -Note 'Directory (tenant) ID.'
    Write-CalpermSetting -Name 'Client (application) ID' -Value $clientId -Note $AppName
    $credential = $script:Reg.Credential
    if ($credential -and $credential.Kind -eq 'certificate') {
        Write-CalpermSetting -Name 'Certificate thumbprint' -Value $credential.Thumbprint -Note ('Valid until {0}; the connector signs in with the matching private key.' -f $credential.Expires)
    } elseif ($credential) {
        Write-CalpermSetting -Name 'Secret expiry' -Value $credential.Expires -Note ('Client secret: {0}.' -f $credential.Where)
    } else {
        Write-CalpermSetting -Name 'Secret expiry' -Value '(no secret made in this run)' -Note 'See the secret item above.'
    }
    Write-CalpermSetting -Name 'EWS URL' -Value $script:EwsUrl -Note 'The server URL the manual gives for Exchange Online.'
    Write-CalpermSetting -Name 'Autodiscover' -Value 'off' -Note 'Leave the Autodiscover box unticked.'
    Write-CalpermSetting -Name 'API' -Value 'Microsoft Graph Calendars.Read (application)' -Note 'This permission authorizes calls to graph.microsoft.com, not to EWS. A connector that calls the EWS URL app-only needs the Office 365 Exchange Online permission full_access_as_app instead: check which API the connector uses.'
    if ($Restricted) {
        Write-CalpermSetting -Name 'Mailbox access' -Value ('members of {0} only' -f $Group) -Note 'No tenant-wide consent: the next script (in Exchange Online) limits the app with RBAC for Applications.'
    } else {
        Write-CalpermSetting -Name 'Mailbox access' -Value 'every mailbox' -Note 'Tenant-wide admin consent. To limit the app to one group, rerun with RestrictToGroup (calperm: --restrict-to-group).'
    }
}

# --- Run ------------------------------------------------------------------------------------
Write-CalpermRecord ([ordered]@{ type = 'start'; script = 'app-registration'; monitor = $null; accessRights = $null; whatIf = $script:WhatIfMode; total = $null })
$restricted = $false
try {
    $problem = Connect-CalpermGraph
    if ($problem) { Stop-CalpermRun -Kind $problem.Kind -Message $problem.Message }
    Invoke-CalpermAppObjects
    Invoke-CalpermAppConsent -Restricted $restricted
    Invoke-CalpermAppCredential
    Write-CalpermAppOutputs
    Write-CalpermAppSettings -Restricted $false -Group ''
} catch {
    Write-CalpermUnexpected $_
} finally {
    Disconnect-CalpermGraph
}
Complete-CalpermRun
