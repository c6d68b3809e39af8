<#
.SYNOPSIS
    Checks whether the connector can use Exchange Web Services (EWS), and until when.
.DESCRIPTION
    Reads the organization's EWS settings (Get-OrganizationConfig: EwsEnabled, EwsAllowedAppIDs,
    EwsApplicationAccessPolicy, EwsAllowList) and each mailbox's EwsEnabled
    (Get-EXOCasMailbox; EWS is allowed for a mailbox only if neither is False), and
    changes nothing. Reports two steps:
      ews-settings   the settings could be read (they follow as settings)
      ews-readiness  ok: the connector's app can use EWS today; failed: it cannot (the message
                     gives the Set-OrganizationConfig command that would allow it); skipped: it
                     depends on an app ID that was not given (ConnectorAppId)
    Exchange Online blocks EWS from 1 Oct 2026 unless EwsEnabled is True and the app is on
    EwsAllowedAppIDs, and switches EWS off on 1 Apr 2027 with no exceptions. Both dates are
    compared with the date the script runs. Microsoft Graph (Calendars.Read application
    permission) is the replacement.
.PARAMETER ConnectorAppId
    The connector's application (client) ID, as app-registration reports it. Empty: the
    organization's settings only.
.PARAMETER UserPrincipalName
    Admin account for the interactive Exchange Online sign-in (optional).
.PARAMETER RecordMarker
    Set by calperm: report results as JSON lines starting with this marker. Leave empty when
    running the script by hand; results are then PowerShell objects.
.EXAMPLE
    .\ews-readiness.ps1 -ConnectorAppId 11111111-2222-3333-4444-555555555555
.NOTES
    Rendered by calperm 0.1.0 (connection: exo). Render it again with
    `calperm render ews-readiness`, or run it with `calperm run ews-readiness`. It runs unchanged on
    Windows PowerShell 5.1 and PowerShell 7.4 or later (ExchangeOnlineManagement 3.10 lists 7.6); on
    other versions it warns.
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [string] $ConnectorAppId = '',
    # Admin account to sign in to Exchange with (optional; the sign-in window asks otherwise).
    [string] $UserPrincipalName = '',
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

# --- Connecting to Exchange -----------------------------------------------------------------
# Connection: exo (calperm --connection).
# Exchange Online, interactive modern sign-in (MFA works). Basic authentication and Remote
# PowerShell are retired; this is the ExchangeOnlineManagement V3 module's REST connection.
function Connect-CalpermExchange {
    Import-Module ExchangeOnlineManagement -ErrorAction Stop
    $parameters = @{ ShowBanner = $false }
    if ($UserPrincipalName) { $parameters.UserPrincipalName = $UserPrincipalName }
    Connect-ExchangeOnline @parameters
    $script:Connected = $true
}
function Disconnect-CalpermExchange {
    if ($script:Connected) { Disconnect-ExchangeOnline -Confirm:$false -WhatIf:$false -ErrorAction SilentlyContinue }
}
$script:Connected = $false
$script:ExchangeSession = $null

function Connect-CalpermExchangeOrStop {
    try {
        Connect-CalpermExchange
    } catch {
        Stop-CalpermRun -Kind 'connect' -Message ('Could not connect to Exchange: ' + $_.Exception.Message)
    }
}

# --- EWS readiness ----------------------------------------------------------------------------
# Reads the organization's EWS settings and says whether the connector's app can use EWS today.
# It changes nothing. Dates (reference: entra.md §4.1, re-check them, Microsoft moved them once):
# Exchange Online blocks EWS from 1 Oct 2026 unless EwsEnabled is True and the app is on
# EwsAllowedAppIDs (organizations still unset then are switched to False), and switches EWS off
# on 1 Apr 2027 with no exceptions. Exchange Server (on premises) is not affected.
$script:EwsBlockDate = New-Object -TypeName System.DateTime -ArgumentList 2026, 10, 1, 0, 0, 0, ([System.DateTimeKind]::Utc)
$script:EwsShutdownDate = New-Object -TypeName System.DateTime -ArgumentList 2027, 4, 1, 0, 0, 0, ([System.DateTimeKind]::Utc)

function Get-CalpermEwsOrganizationConfig {
    # EwsAllowedAppIDs is only in the output with -RetrieveEwsOperationAccessPolicy (entra.md §4.2).
    try {
        Get-OrganizationConfig -RetrieveEwsOperationAccessPolicy -ErrorAction Stop
    } catch [System.Management.Automation.ParameterBindingException] {
        Write-Warning 'Get-OrganizationConfig does not know -RetrieveEwsOperationAccessPolicy here (older module or connection): EwsAllowedAppIDs cannot be read.'
        Get-OrganizationConfig -ErrorAction Stop
    }
}

# A property as text, '' when the object does not have it or it is empty (EwsEnabled is null then).
function Get-CalpermConfigText {
    param($Config, [string] $Name)
    if (-not $Config.PSObject.Properties[$Name]) { return '' }
    $value = $Config.$Name
    if ($null -eq $value) { return '' }
    [string]$value
}

# A multi-valued property (or one comma-separated string) as a list of values.
function Get-CalpermConfigList {
    param($Config, [string] $Name)
    $values = @()
    if (-not $Config.PSObject.Properties[$Name]) { return , $values }
    foreach ($entry in @($Config.$Name)) {
        if ($null -eq $entry) { continue }
        foreach ($part in ([string]$entry -split '[,;\s]+')) { if ($part) { $values += $part } }
    }
    , $values
}

# The mailbox-level switch (field-notes §8): EWS is allowed for a mailbox only if neither the
# organization's nor the mailbox's EwsEnabled is False (MC1015893; the Set-CASMailbox doc: the
# mailbox value counts only where the organization's is not False). EwsEnabled is in the minimum
# property set, so the list streams and only the blocked mailboxes are kept.
function Get-CalpermEwsMailboxBlock {
    $blocked = New-Object System.Collections.ArrayList
    $total = 0
    Get-EXOCasMailbox -ResultSize Unlimited -ErrorAction Stop | ForEach-Object {
        $total++
        if ([string]$_.EwsEnabled -eq 'False') { [void]$blocked.Add([string]$_.PrimarySmtpAddress) }
    }
    @{ Total = $total; Blocked = $blocked }
}

# Reads the mailbox-level switch and reports it; returns a note for the readiness message ('' when
# no mailbox blocks EWS).
function Get-CalpermEwsMailboxNote {
    param([string] $OrganizationEnabled)
    try {
        $mailboxes = Get-CalpermEwsMailboxBlock
    } catch {
        Write-CalpermSetting -Name 'Mailboxes with EwsEnabled False' -Value 'not read' -Note ('Get-EXOCasMailbox failed: ' + $_.Exception.Message)
        return ' The mailbox-level EwsEnabled could not be read.'
    }
    $count = $mailboxes.Blocked.Count
    $examples = @($mailboxes.Blocked | Select-Object -First 10) -join ', '
    if ($count -gt 10) { $examples += ', ...' }
    $note = 'Per mailbox (Get-CASMailbox EwsEnabled); EWS is allowed for a mailbox only if neither this nor the organization''s EwsEnabled is False.'
    if ($count -gt 0) { $note += ' ' + $examples }
    Write-CalpermSetting -Name 'Mailboxes with EwsEnabled False' -Value ('{0} of {1}' -f $count, $mailboxes.Total) -Note $note
    if ($count -eq 0 -or $OrganizationEnabled -eq 'False') { return '' }
    $text = (' {0} of {1} mailboxes have EwsEnabled False: EWS is blocked for them whatever the organization allows ({2}). To allow one: Set-CASMailbox -Identity <mailbox> -EwsEnabled $true.' -f $count, $mailboxes.Total, $examples)
    Write-Warning $text.Trim()
    $text
}

function Invoke-CalpermEwsReadiness {
    param([string] $ConnectorAppId)
    $ConnectorAppId = ([string]$ConnectorAppId).Trim()
    try {
        $config = Get-CalpermEwsOrganizationConfig
    } catch {
        Write-CalpermStep -Step 'ews-settings' -Outcome 'failed' -Message ('Could not read the organization configuration: ' + $_.Exception.Message)
        Write-CalpermStep -Step 'ews-readiness' -Outcome 'skipped' -Message 'The EWS settings could not be read.'
        return
    }
    $enabled = Get-CalpermConfigText $config 'EwsEnabled'
    $enabledText = $enabled
    if (-not $enabled) { $enabledText = 'not set (null)' }
    $policy = Get-CalpermConfigText $config 'EwsApplicationAccessPolicy'
    $allowList = Get-CalpermConfigList $config 'EwsAllowList'
    $blockList = Get-CalpermConfigList $config 'EwsBlockList'
    Write-CalpermSetting -Name 'EwsEnabled' -Value $enabledText -Note 'Organization-wide EWS switch (Get-OrganizationConfig).'
    $hasAppIds = [bool]$config.PSObject.Properties['EwsAllowedAppIDs']
    $appIds = Get-CalpermConfigList $config 'EwsAllowedAppIDs'
    $appIdsText = '(empty)'
    if (-not $hasAppIds) { $appIdsText = '(not read)' } elseif ($appIds.Count -gt 0) { $appIdsText = $appIds -join ', ' }
    Write-CalpermSetting -Name 'EwsAllowedAppIDs' -Value $appIdsText -Note 'Application IDs that may use EWS when EwsEnabled is True.'
    $summary = 'EwsEnabled: {0}; EwsAllowedAppIDs: {1}.' -f $enabledText, $appIdsText
    if ($policy) {
        Write-CalpermSetting -Name 'EwsApplicationAccessPolicy' -Value $policy -Note ('EwsAllowList: {0}; EwsBlockList: {1} (user agents).' -f ($allowList -join ', '), ($blockList -join ', '))
        $summary += ' EwsApplicationAccessPolicy: {0}.' -f $policy
    }
    Write-CalpermStep -Step 'ews-settings' -Outcome 'ok' -Message $summary
    $mailboxNote = Get-CalpermEwsMailboxNote -OrganizationEnabled $enabled

    # The older user-agent policy must let the connector through too (entra.md §4.2).
    $policyNote = ''
    $policyBlocksAll = $false
    if ($policy -eq 'EnforceAllowList') {
        if ($allowList.Count -eq 0) {
            $policyBlocksAll = $true
            $policyNote = ' EwsApplicationAccessPolicy is EnforceAllowList with an empty EwsAllowList: every EWS client is blocked.'
        } else {
            $policyNote = (' EwsApplicationAccessPolicy is EnforceAllowList: the connector''s user agent must also match EwsAllowList ({0}).' -f ($allowList -join ', '))
        }
    } elseif ($policy -eq 'EnforceBlockList' -and $blockList.Count -gt 0) {
        $policyNote = (' EwsApplicationAccessPolicy is EnforceBlockList: the connector''s user agent must not match EwsBlockList ({0}).' -f ($blockList -join ', '))
    }

    $now = (Get-Date).ToUniversalTime()
    $listed = $false
    if ($ConnectorAppId) { $listed = @($appIds | Where-Object { $_ -eq $ConnectorAppId }).Count -gt 0 }
    # The command that lets the connector through: the list is written whole, so the IDs already
    # on it are kept (entra.md §4.2). Shown in the message only: this script changes nothing.
    $wanted = @($appIds)
    if ($ConnectorAppId) {
        if (-not $listed) { $wanted += $ConnectorAppId }
    } else {
        $wanted += '<connector client ID>'
    }
    $allowCommand = "Set-OrganizationConfig -EwsEnabled `$true -EwsAllowedAppIDs '{0}'" -f (($wanted -join ',') -replace "'", "''")
    $howTo = ' To let the connector use EWS until 1 Apr 2027: {0} (the list is written whole; changes can take up to 24 hours).' -f $allowCommand
    $app = 'the app {0}' -f $ConnectorAppId

    if ($now -ge $script:EwsShutdownDate) {
        $outcome = 'failed'
        $message = 'EWS in Exchange Online was switched off on 1 Apr 2027, with no exceptions: the connector cannot use it. Use Microsoft Graph instead.'
    } elseif ($enabled -eq 'False') {
        $outcome = 'failed'
        $message = 'EwsEnabled is False: EWS is blocked for every app in this organization.' + $howTo
    } elseif ($enabled -eq 'True') {
        if ($now -lt $script:EwsBlockDate) {
            $outcome = 'ok'
            $message = 'EwsEnabled is True: every app can use EWS until 1 Oct 2026; from then only the apps on EwsAllowedAppIDs.'
            if ($ConnectorAppId -and -not $listed) { $message += (' From then {0} is blocked: it is not on the list.' -f $app) + $howTo }
            if (-not $ConnectorAppId) { $message += ' Pass ConnectorAppId to check the connector''s app.' }
        } elseif (-not $ConnectorAppId) {
            $outcome = 'skipped'
            $message = ('EwsEnabled is True: only the {0} app(s) on EwsAllowedAppIDs can use EWS. Pass ConnectorAppId (the connector''s client ID) to check it.' -f $appIds.Count)
        } elseif ($listed) {
            $outcome = 'ok'
            $message = 'EwsEnabled is True and {0} is on EwsAllowedAppIDs: it can use EWS until 1 Apr 2027, when EWS is switched off with no exceptions.' -f $app
        } else {
            $outcome = 'failed'
            $message = ('EwsEnabled is True and {0} is not on EwsAllowedAppIDs: EWS is blocked for it.' -f $app) + $howTo
        }
    } else {
        $outcome = 'ok'
        if ($now -lt $script:EwsBlockDate) {
            $message = 'EwsEnabled is not set: every app can use EWS today. Organizations still unset on 1 Oct 2026 are switched to False, which blocks EWS for every app.' + $howTo
        } else {
            $message = 'EwsEnabled is not set: every app can use EWS today, but Microsoft switches organizations still unset on 1 Oct 2026 to False, tenant by tenant, which blocks EWS for every app; here that can happen at any time.' + $howTo
        }
        Write-Warning $message
    }
    if ($policyBlocksAll -and $outcome -eq 'ok') { $outcome = 'failed' }
    if ($outcome -eq 'ok' -and $enabled -eq 'True' -and $ConnectorAppId -and -not $listed) { Write-Warning $message }
    Write-CalpermStep -Step 'ews-readiness' -Outcome $outcome -Message ($message + $policyNote + $mailboxNote)
    Write-CalpermSetting -Name 'EWS blocked from' -Value '2026-10-01' -Note 'Exchange Online blocks EWS unless EwsEnabled is True and the app is on EwsAllowedAppIDs.'
    Write-CalpermSetting -Name 'EWS switched off' -Value '2027-04-01' -Note 'EWS in Exchange Online ends for good, no exceptions; EwsEnabled can no longer be changed.'
    Write-CalpermSetting -Name 'Graph alternative' -Value 'https://graph.microsoft.com' -Note 'Microsoft Graph with the Calendars.Read application permission (what app-registration grants) replaces EWS for calendar reads.'
}

# --- Run ------------------------------------------------------------------------------------
Write-CalpermRecord ([ordered]@{ type = 'start'; script = 'ews-readiness'; monitor = $null; accessRights = $null; whatIf = $script:WhatIfMode; total = $null })
try {
    Connect-CalpermExchangeOrStop
    Invoke-CalpermEwsReadiness -ConnectorAppId $ConnectorAppId
} catch {
    Write-CalpermUnexpected $_
} finally {
    Disconnect-CalpermExchange
}
Complete-CalpermRun
