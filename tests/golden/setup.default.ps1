# calperm render setup: 3 scripts. Exchange Online PowerShell and Microsoft Graph PowerShell
# cannot sign in within one PowerShell process (current module versions), so run each script
# in a new PowerShell (pwsh -File <script>, or powershell.exe -File), in this order:
#   01-setup.ps1             Exchange         execution policy; the monitor's rights on every calendar
#   02-app-registration.ps1  Microsoft Graph  the Entra app, Calendars.Read, consent, secret or certificate
#                            reports: ClientId, ServicePrincipalId, TenantId
#   03-app-exchange.ps1      Exchange         EWS readiness of the app
#                            run it with: -ClientId <ClientId of 02-app-registration.ps1>
# Start with 01-setup.ps1. A script that fails stops only the scripts that need its values
# (01-setup.ps1, 02-app-registration.ps1 need none). `calperm run setup` runs exactly these scripts and passes the values on.

# ===== 01-setup.ps1 (script 1 of 3) =====
<#
.SYNOPSIS
    The first script of the setup: execution policy and the monitor's calendar rights, in Exchange.
.DESCRIPTION
    The setup is several scripts, each run in its own PowerShell process, because Exchange Online
    PowerShell and Microsoft Graph PowerShell cannot sign in within one process with current
    module versions. `calperm render setup` prints all of them in order; `calperm run setup` runs
    them one after another and passes on the values each reports. This one does these steps,
    each reported as a step (ok, changed, unchanged, not-applicable, would-change, skipped or
    failed) besides its mailbox records:
      execution-policy     RemoteSigned (Windows only)
      exchange-connect     sign-in to Exchange
      grant                the monitor gets AccessRights on every mailbox's default calendar
                           (one mailbox record each, as the grant script reports them)
    The app registration (Microsoft Graph) and the app's Exchange side (EWS readiness, and the
    RBAC restriction with RestrictToGroup) are the next scripts; they do not need this one.
    When a step fails, the steps that need it are skipped with the reason: without Exchange, the
    grant is skipped. A monitor that cannot be found fails the grant step.
    With -WhatIf nothing is changed.
.PARAMETER Monitor
    The account that gets the rights (UPN or SMTP address recommended).
.PARAMETER AccessRights
    The role to grant (Reviewer = FolderVisible, ReadItems).
.PARAMETER Locale
    'auto' (each mailbox's own language) or the locale code whose Calendar name to expect.
.PARAMETER ResumeDone
    Mailboxes (SMTP addresses) an earlier, interrupted run already did: skipped.
.PARAMETER ExecutionPolicyScope
    LocalMachine (as in the manual; needs "Run as administrator") or CurrentUser.
.PARAMETER UserPrincipalName
    Admin account for the interactive Exchange Online sign-in (optional).
.PARAMETER AwaitAck
    Set by calperm: before each change, wait for calperm to confirm on standard input that the
    change is in its journal; stop when it does not. Leave it off when running the script by hand.
.PARAMETER RecipientTypes
    Mailbox types in scope (RecipientTypeDetails values).
.PARAMETER Include
    Only these mailboxes. Empty: every mailbox of the RecipientTypes.
.PARAMETER Exclude
    Mailboxes never touched, by SMTP address, UPN, alias, name, display name or GUID.
.PARAMETER MailboxesCsv
    A CSV file with a PrimarySmtpAddress, UserPrincipalName, EmailAddress or Identity column:
    only those mailboxes.
.PARAMETER CreatedAfter
    Only mailboxes created after this UTC moment (yyyy-MM-ddTHH:mm:ss) or within this duration back
    from now (36h, 2d, 1w), selected by Exchange with -Filter on WhenCreated. Empty: every mailbox.
    Not with Include or MailboxesCsv.
.PARAMETER MaxRetries
    How often a throttled or transient call is retried before the mailbox is reported failed.
.PARAMETER RetryDelayMs
    The first back-off delay in milliseconds; it doubles on each retry (with jitter, at most 60 s).
.PARAMETER RecordMarker
    Set by calperm: report results as JSON lines starting with this marker. Leave empty when
    running the script by hand; results are then PowerShell objects.
.NOTES
    Rendered by calperm 0.1.0 (connection: exo). Render it again with
    `calperm render setup`, or run it with `calperm run setup`. It runs unchanged on
    Windows PowerShell 5.1 and PowerShell 7.4 or later (ExchangeOnlineManagement 3.10 lists 7.6); on
    other versions it warns.
.EXAMPLE
    .\setup.ps1 -WhatIf
    Shows what every step would do, changes nothing.
.EXAMPLE
    .\01-setup.ps1 -Monitor monitor@contoso.com
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [string] $Monitor = 'Monitor',
    [ValidateSet('Owner', 'PublishingEditor', 'Editor', 'PublishingAuthor', 'Author', 'NonEditingAuthor', 'Reviewer', 'Contributor', 'AvailabilityOnly', 'LimitedDetails')]
    [string] $AccessRights = 'Reviewer',
    [string] $Locale = 'auto',
    [string[]] $ResumeDone = @(),
    # Admin account to sign in to Exchange with (optional; the sign-in window asks otherwise).
    [string] $UserPrincipalName = '',
    # Mailbox types in scope (RecipientTypeDetails).
    [string[]] $RecipientTypes = @('UserMailbox', 'SharedMailbox', 'RoomMailbox', 'EquipmentMailbox'),
    # Only these mailboxes (empty: every mailbox of the types above).
    [string[]] $Include = @(),
    # Never these mailboxes (SMTP address, UPN, alias, name, display name or GUID).
    [string[]] $Exclude = @(),
    # Only the mailboxes listed in this CSV file (empty: not used).
    [string] $MailboxesCsv = '',
    # Only mailboxes created after this UTC moment, yyyy-MM-ddTHH:mm:ss, or within a duration such as 2d (empty: all); Exchange selects them.
    [string] $CreatedAfter = '',
    # With CreatedAfter: these mailboxes too, by identity (calperm --since: the ones an earlier run left unfinished).
    [string[]] $Retry = @(),
    # The journal a delta run is based on (calperm --since); only recorded.
    [string] $Since = '',
    # Retries of a throttled or transient call, and the first back-off delay (doubles each time).
    [ValidateRange(0, 20)] [int] $MaxRetries = 6,
    [ValidateRange(0, 60000)] [int] $RetryDelayMs = 1000,
    [ValidateSet('LocalMachine', 'CurrentUser')]
    [string] $ExecutionPolicyScope = 'LocalMachine',
    [string] $RecordMarker = '',
    [switch] $AwaitAck
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

# --- Calling Exchange: classify errors, back off when throttled -----------------------------
# Every Exchange error is classified here and nowhere else. Exchange Online V3 errors read
# '<LocId>|<Exception.Type>|<text>' (exchange.md §2.1), but live tenants also return '||<text>'
# with no LocId and no type (field-notes §2), and remote sessions (Exchange Server, Import-PSSession)
# give the plain text with the type only in CategoryInfo. So: the exception type when there is one
# (in the message, in CategoryInfo.Reason, or as 'FailureCategory=Cmdlet-<type>' in the
# FullyQualifiedErrorId), else the text. Typed catch blocks do not work with V3 errors.
# Kinds: entry-exists, no-entry, not-found, ambiguous, throttled, transient, access-denied, other.

# Exception type names (the short name) that say what happened.
$script:ErrorKindByType = @{
    UserAlreadyExistsInPermissionEntryException = 'entry-exists'
    UserNotFoundInPermissionEntryException      = 'no-entry'
    ManagementObjectNotFoundException           = 'not-found'
    ManagementObjectAmbiguousException          = 'ambiguous'
    ServerBusyException                         = 'throttled'
    UnauthorizedAccessException                 = 'access-denied'
}
# Wrapper types that say nothing about the cause: the text decides.
$script:ErrorGenericTypes = @('Exception', 'RemoteException', 'RuntimeException', 'ActionPreferenceStopException',
    'CmdletInvocationException', 'MethodInvocationException', 'PSInvalidOperationException', 'InvalidOperationException')

# The short exception type name an Exchange error carries, or '' when it carries none.
function Get-CalpermErrorType {
    param($ErrorRecord)
    $message = [string]$ErrorRecord.Exception.Message
    # '<LocId>|<Namespace.Type>|<text>'; '||<text>' has no type.
    if ($message -match '^[^|\s]*\|([\w.]+)\|') { return ($Matches[1] -split '\.')[-1] }
    $reason = ''
    if ($ErrorRecord.CategoryInfo) { $reason = [string]$ErrorRecord.CategoryInfo.Reason }
    if ($reason -match 'Exception$' -and $script:ErrorGenericTypes -notcontains $reason) { return $reason }
    if ([string]$ErrorRecord.FullyQualifiedErrorId -match 'FailureCategory=Cmdlet-(\w+Exception)') { return $Matches[1] }
    ''
}

# The kind of an Exchange error: by exception type when present, else by its text.
function Get-CalpermErrorKind {
    param($ErrorRecord)
    $type = Get-CalpermErrorType $ErrorRecord
    if ($type) {
        if ($script:ErrorKindByType.ContainsKey($type)) { return $script:ErrorKindByType[$type] }
        if ($type -match '(?i)Throttl|TooManyRequests|ServerBusy') { return 'throttled' }
        if ($type -match '(?i)Transient|Timeout') { return 'transient' }
        if ($type -match '(?i)AccessDenied|Unauthorized|PermissionDenied') { return 'access-denied' }
        # CommandNotFoundException is a missing cmdlet, not a missing object.
        if ($type -ne 'CommandNotFoundException' -and $type -match 'NotFoundException$') { return 'not-found' }
    }
    $text = [string]$ErrorRecord.Exception.Message
    # Texts of exchange.md §2.2 and field-notes §2/§3.
    if ($text -match '(?i)An existing permission entry was found') { return 'entry-exists' }
    if ($text -match '(?i)There is no existing permission entry found for user') { return 'no-entry' }
    if ($text -match '(?i)matches multiple entries|isn''t unique') { return 'ambiguous' }
    # Throttling (exchange.md §2.3: no confirmed V3 text; the recommended pattern) and the
    # tenant-wide concurrency limit (field-notes §3).
    if ($text -match '(?i)micro delay|throttl|server ?busy|TooManyRequests|Too Many Requests|\b429\b|exceeded the maximum number of connections|maximum number of concurrent requests') { return 'throttled' }
    if ($text -match '(?i)HttpStatusCode=5\d\d|\b50[234]\b|temporarily unavailable|timed out|transient error') { return 'transient' }
    if ($text -match '(?i)couldn''t be found|could not be found|doesn''t exist|does not exist|couldn''t be read from domain controller') { return 'not-found' }
    # Inference: no exact Exchange access-denied text is in the reference; the usual wordings.
    if ($text -match '(?i)access is denied|access denied|AccessDenied|Forbidden|\b403\b|Insufficient privileges|not authorized') { return 'access-denied' }
    if ($ErrorRecord.CategoryInfo -and [string]$ErrorRecord.CategoryInfo.Category -eq 'PermissionDenied') { return 'access-denied' }
    'other'
}

# The kind a failed mailbox is reported with (design.md "Outcomes"; calperm's MailboxKind): a
# transient error whose retries were spent counts as throttled.
function Get-CalpermFailureKind {
    param([string] $Kind)
    if ($Kind -eq 'transient') { return 'throttled' }
    if (@('not-found', 'access-denied', 'throttled', 'other') -contains $Kind) { return $Kind }
    'other'
}

# Runs one Exchange cmdlet. Throttled and transient failures are retried with exponential
# back-off and jitter (at most MaxRetries times, each wait at most 60 s); anything else, or a
# retry budget spent, is thrown to the caller. Every attempt is counted: each is a round trip.
function Invoke-CalpermExchange {
    param([string] $Command, [hashtable] $Parameters, [hashtable] $Tally)
    $attempt = 0
    while ($true) {
        $Tally.calls++
        try {
            return (& $Command @Parameters -ErrorAction Stop)
        } catch {
            $kind = Get-CalpermErrorKind $_
            if (($kind -eq 'throttled' -or $kind -eq 'transient') -and $attempt -lt $MaxRetries) {
                $attempt++
                $Tally.retries++
                $ceiling = [Math]::Min(60000, $RetryDelayMs * [Math]::Pow(2, $attempt - 1))
                $wait = Get-Random -Minimum ([int]($ceiling / 2)) -Maximum ([int]$ceiling + 1)
                Write-Verbose ('{0} was {1}; retry {2} of {3} in {4} ms' -f $Command, $kind, $attempt, $MaxRetries, $wait)
                Start-Sleep -Milliseconds $wait
                continue
            }
            throw
        }
    }
}

# --- Rights: what each role grants, and what "covers" means ---------------------------------
# A right already covering the target is never lowered: Editor covers Reviewer because it grants
# every right Reviewer grants. The table lists each role's individual rights (exchange.md §1.1)
# plus the free/busy levels calendar folders add.
$script:RoleRights = @{
    'Owner' = @('CreateItems', 'CreateSubfolders', 'DeleteAllItems', 'DeleteOwnedItems', 'EditAllItems', 'EditOwnedItems', 'FolderContact', 'FolderOwner', 'FolderVisible', 'FreeBusyDetailed', 'FreeBusySimple', 'ReadItems')
    'PublishingEditor' = @('CreateItems', 'CreateSubfolders', 'DeleteAllItems', 'DeleteOwnedItems', 'EditAllItems', 'EditOwnedItems', 'FolderVisible', 'FreeBusyDetailed', 'FreeBusySimple', 'ReadItems')
    'Editor' = @('CreateItems', 'DeleteAllItems', 'DeleteOwnedItems', 'EditAllItems', 'EditOwnedItems', 'FolderVisible', 'FreeBusyDetailed', 'FreeBusySimple', 'ReadItems')
    'PublishingAuthor' = @('CreateItems', 'CreateSubfolders', 'DeleteOwnedItems', 'EditOwnedItems', 'FolderVisible', 'FreeBusyDetailed', 'FreeBusySimple', 'ReadItems')
    'Author' = @('CreateItems', 'DeleteOwnedItems', 'EditOwnedItems', 'FolderVisible', 'FreeBusyDetailed', 'FreeBusySimple', 'ReadItems')
    'NonEditingAuthor' = @('CreateItems', 'DeleteOwnedItems', 'FolderVisible', 'FreeBusyDetailed', 'FreeBusySimple', 'ReadItems')
    'Reviewer' = @('FolderVisible', 'FreeBusyDetailed', 'FreeBusySimple', 'ReadItems')
    'Contributor' = @('CreateItems', 'FolderVisible', 'FreeBusySimple')
    'AvailabilityOnly' = @('FreeBusySimple')
    'LimitedDetails' = @('FreeBusyDetailed', 'FreeBusySimple')
}
$script:IndividualRights = @('ReadItems', 'CreateItems', 'EditOwnedItems', 'DeleteOwnedItems', 'EditAllItems', 'DeleteAllItems', 'CreateSubfolders', 'FolderOwner', 'FolderContact', 'FolderVisible', 'None')

# The set of rights (sorted, unique) that AccessRights values grant; $null for an unknown value.
function ConvertTo-CalpermRightSet {
    param([string[]] $Values)
    $set = @()
    $individual = $false
    foreach ($raw in $Values) {
        foreach ($value in ([string]$raw -split ',')) {
            $value = $value.Trim()
            if (-not $value) { continue }
            if ($script:RoleRights.ContainsKey($value)) {
                $set += $script:RoleRights[$value]
            } else {
                $right = $script:IndividualRights | Where-Object { $_ -eq $value } | Select-Object -First 1
                if (-not $right) { return $null }
                if ($right -ne 'None') { $set += $right; $individual = $true }
            }
        }
    }
    if ($individual -and $set.Count -gt 0) {
        $set += 'FreeBusySimple'
        if ($set -contains 'ReadItems') { $set += 'FreeBusyDetailed' }
    }
    , [string[]]@($set | Sort-Object -Unique)
}

function Test-CalpermSameSet {
    param([string[]] $A, [string[]] $B)
    (@($A | Sort-Object) -join ',') -ceq (@($B | Sort-Object) -join ',')
}

# What a grant does with the monitor's current rights ($null: no entry). Returns Action
# (add, unchanged, kept-higher, update, conflict) and, for update, the AccessRights to set:
# the union of current and target, so nothing the monitor already had is lost.
function Get-CalpermGrantDecision {
    param([string[]] $Current, [string] $Target)
    if ($null -eq $Current) { return @{ Action = 'add'; Rights = @($Target) } }
    $targetSet = ConvertTo-CalpermRightSet @($Target)
    $currentSet = ConvertTo-CalpermRightSet $Current
    if ($null -eq $currentSet) { $currentSet = @() }
    if (Test-CalpermSameSet $currentSet $targetSet) { return @{ Action = 'unchanged'; Rights = $Current } }
    $missing = @($targetSet | Where-Object { $currentSet -notcontains $_ })
    if ($missing.Count -eq 0) { return @{ Action = 'kept-higher'; Rights = $Current } }
    $union = [string[]]@(@($currentSet) + @($targetSet) | Sort-Object -Unique)
    foreach ($role in $script:RoleRights.Keys | Sort-Object) {
        if (Test-CalpermSameSet $script:RoleRights[$role] $union) { return @{ Action = 'update'; Rights = @($role) } }
    }
    $individual = [string[]]@($union | Where-Object { $_ -ne 'FreeBusySimple' -and $_ -ne 'FreeBusyDetailed' })
    if (Test-CalpermSameSet (ConvertTo-CalpermRightSet $individual) $union) { return @{ Action = 'update'; Rights = $individual } }
    @{ Action = 'conflict'; Rights = $Current }
}

# --- Finding the default calendar -----------------------------------------------------------
# The Calendar folder's name depends on the language it was created in. The name below is only a
# first guess that saves a round trip; when it misses, the default calendar is found by its
# FolderType, which is the same in every language (exchange.md §3).
$script:CalendarNames = @{
    'en' = 'Calendar'
    'de' = 'Kalender'
    'fr' = 'Calendrier'
    'es' = 'Calendario'
    'it' = 'Calendario'
    'nl' = 'Agenda'
    'pt-br' = 'Calendário'
    'pt-pt' = 'Calendário'
    'ru' = 'Календарь'
    'pl' = 'Kalendarz'
    'sv' = 'Kalender'
    'da' = 'Kalender'
    'nb' = 'Kalender'
    'nn' = 'Kalender'
    'fi' = 'Kalenteri'
    'cs' = 'Kalendář'
    'hu' = 'Naptár'
    'tr' = 'Takvim'
    'ja' = '予定表'
    'zh-cn' = '日历'
    'zh-tw' = '行事曆'
    'ko' = '일정'
    'el' = 'Ημερολόγιο'
    'he' = 'לוח שנה'
    'ar-sa' = 'التقويم'
    'af' = 'Kalender'
    'am' = 'የቀን መቁጠሪያ'
    'as' = 'কেলেণ্ডাৰ'
    'az-az' = 'Təqvim'
    'be' = 'Каляндар'
    'bg' = 'Календар'
    'bn-bd' = 'বর্ষপঞ্জী'
    'bn-in' = 'ক্যালেন্ডার'
    'bs' = 'Kalendar'
    'ca' = 'Calendari'
    'ca-es@valencia' = 'Calendari'
    'cy' = 'Calendr'
    'et' = 'Kalender'
    'eu' = 'Egutegia'
    'fa' = 'تقویم'
    'fil' = 'Kalendaryo'
    'ga' = 'Féilire'
    'gd' = 'Miosachan'
    'gl' = 'Calendario'
    'gu' = 'કૅલેન્ડર'
    'hi' = 'कैलेंडर'
    'hr' = 'Kalendar'
    'hy' = 'Օրացույց'
    'id' = 'Kalender'
    'is' = 'Dagbók'
    'ka' = 'კალენდარი'
    'kk' = 'Күнтізбе'
    'km' = 'ប្រតិទិន'
    'kn' = 'ಕ್ಯಾಲೆಂಡರ್'
    'kok' = 'कॅलेंडर'
    'ky' = 'Календарь'
    'lb' = 'Kalenner'
    'lt' = 'Kalendorius'
    'lv' = 'Kalendārs'
    'mi' = 'Maramataka'
    'mk' = 'Календар'
    'ml' = 'കലണ്ടര്‍'
    'mn' = 'Цаглабар'
    'mr' = 'दिनदर्शिका'
    'ms' = 'Kalendar'
    'mt' = 'Kalendarju'
    'ne' = 'पात्रो'
    'or' = 'କ୍ୟାଲେଣ୍ଡର'
    'pa-in' = 'ਕੈਲੰਡਰ'
    'prs' = 'سالنما'
    'quz' = 'Intiwatana'
    'ro' = 'Calendar'
    'sd' = 'ڪيلنڏر'
    'si' = 'දිනදසුන'
    'sk' = 'Kalendár'
    'sl' = 'Koledar'
    'sq-al' = 'Kalendar'
    'sr-ba' = 'Календар'
    'sr-rs' = 'Календар'
    'sr-rs@latin' = 'Kalendar'
    'sw-ke' = 'Kalenda'
    'ta' = 'நாள்காட்டி'
    'te' = 'క్యాలెండర్'
    'th' = 'ปฏิทิน'
    'tk' = 'Senenama'
    'tt' = 'Календарь'
    'ug' = 'كالېندار'
    'uk' = 'Календар'
    'ur-pk' = 'کیلنڈر'
    'uz' = 'Kalender'
    'vi' = 'Lịch'
}

# A -Locale given by hand that names no known calendar stops the run before anything is read.
function Assert-CalpermLocale {
    if ($Locale -ne 'auto' -and -not $script:CalendarNames.ContainsKey($Locale)) {
        Stop-CalpermRun -Kind 'other' -Message ("Unknown locale '{0}'. Use 'auto' or a code such as 'de'." -f $Locale) -ExitCode 2
    }
}

# Set when the tenant refuses to list mailbox languages (field-notes §10): no name is guessed then.
$script:LanguagesRefused = $false

# The expected name of the mailbox's default calendar, or $null when there is no good guess.
function Get-CalpermExpectedCalendarName {
    param($Mailbox)
    if ($Locale -ne 'auto') { return $script:CalendarNames[$Locale.ToLowerInvariant()] }
    if ($script:LanguagesRefused) { return $null }
    $languages = @()
    if ($Mailbox.PSObject.Properties['Languages']) { $languages = @($Mailbox.Languages | Where-Object { $_ }) }
    # Mailboxes nobody has signed in to keep the English names they were created with.
    if ($languages.Count -eq 0) { return 'Calendar' }
    foreach ($language in $languages) {
        $code = ([string]$language).ToLowerInvariant()
        if ($script:CalendarNames.ContainsKey($code)) { return $script:CalendarNames[$code] }
        $primary = ($code -split '-')[0]
        if ($script:CalendarNames.ContainsKey($primary)) { return $script:CalendarNames[$primary] }
    }
    $null
}

# The mailbox's default calendar found by FolderType: the root folder of type 'Calendar'
# (secondary calendars are 'User Created'; a nested second 'Calendar' row is not the default).
# Returns Name and Identity or $null. The identity is the documented '<mailbox>:\<Name>' for a
# root-level calendar whose name can be written as a path; otherwise '<mailbox>:<FolderId>'
# (works in production, but whether Get-EXOMailboxFolderStatistics' FolderId has the same form as
# Get-MailboxFolderStatistics' is not confirmed; field-notes §10).
function Resolve-CalpermDefaultCalendar {
    param([string] $Owner, [hashtable] $Tally)
    $folders = @(Invoke-CalpermExchange -Command 'Get-EXOMailboxFolderStatistics' -Parameters @{ Identity = $Owner; FolderScope = 'Calendar' } -Tally $Tally)
    $calendars = @($folders | Where-Object { [string]$_.FolderType -eq 'Calendar' } |
        Sort-Object { ([string]$_.FolderPath).Trim('/').Split('/').Count })
    if ($calendars.Count -eq 0) { return $null }
    $default = $calendars[0]
    @{ Name = [string]$default.Name; Identity = (Get-CalpermCalendarIdentity -Owner $Owner -Folder $default); Guessed = $false }
}

# '<mailbox>:\<Name>' when the folder sits at the top (FolderPath '/<Name>') and its name can be
# written as a path: not empty, no '\' (the path separator), no '/' (shown as U+F8FF in folder
# identities; inference: not safe in a path either) and no surrounding spaces. Else the FolderId.
function Get-CalpermCalendarIdentity {
    param([string] $Owner, $Folder)
    $name = [string]$Folder.Name
    $path = [string]$Folder.FolderPath
    if ($name -and $path -eq ('/' + $name) -and $name -notmatch '[\\/\uF8FF]' -and $name.Trim() -eq $name) {
        return ('{0}:\{1}' -f $Owner, $name)
    }
    '{0}:{1}' -f $Owner, [string]$Folder.FolderId
}

# The folder to try first for a mailbox: the one an earlier journal recorded, else the guessed
# name, else the FolderType lookup.
function Get-CalpermFirstFolder {
    param($Mailbox, [hashtable] $Tally)
    $owner = [string]$Mailbox.PrimarySmtpAddress
    $cached = Get-CalpermCachedFolder $owner
    if ($cached) { return $cached }
    $guess = Get-CalpermExpectedCalendarName $Mailbox
    if ($guess) { return @{ Name = $guess; Identity = ('{0}:\{1}' -f $owner, $guess); Guessed = $true } }
    Resolve-CalpermDefaultCalendar -Owner $owner -Tally $Tally
}

# The monitor's current AccessRights on a folder, or $null when it has no entry.
function Get-CalpermMonitorRights {
    param([string] $Identity, [hashtable] $Tally)
    try {
        $entries = @(Invoke-CalpermExchange -Command 'Get-MailboxFolderPermission' -Parameters @{ Identity = $Identity; User = $script:MonitorUser } -Tally $Tally)
    } catch {
        if ((Get-CalpermErrorKind $_) -eq 'no-entry') { return $null }
        throw
    }
    if ($entries.Count -eq 0) { return $null }
    , [string[]]@($entries[0].AccessRights | ForEach-Object { [string]$_ })
}

# The first call for a mailbox, made on its default calendar: read the monitor's entry (Mode Read),
# add it (Add) or remove it (Remove). The guessed folder name is tried first; when Exchange says
# that folder does not exist, the call is made again on the calendar found by FolderType.
# With ByFolderType no name is guessed: the calendar is looked up by FolderType straight away.
# Returns Folder ($null: the mailbox has no default calendar), Current (the monitor's rights, $null
# when it has no entry) and Done (the add or remove was made). The record names the folder tried.
function Invoke-CalpermFirstCall {
    param($Mailbox, [hashtable] $Tally, [System.Collections.Specialized.OrderedDictionary] $Record, [string] $Mode, [switch] $ByFolderType)
    if ($ByFolderType) {
        # Given --folders-from, the calendar that journal recorded is tried first even here.
        $folder = Get-CalpermCachedFolder ([string]$Mailbox.PrimarySmtpAddress)
        if (-not $folder) { $folder = Resolve-CalpermDefaultCalendar -Owner ([string]$Mailbox.PrimarySmtpAddress) -Tally $Tally }
    } else {
        $folder = Get-CalpermFirstFolder -Mailbox $Mailbox -Tally $Tally
    }
    while ($folder) {
        $Record.folder = $folder.Name
        $Record.folderIdentity = $folder.Identity
        $user = $script:MonitorUser
        try {
            if ($Mode -eq 'Add' -and $script:Cmdlet.ShouldProcess($folder.Identity, ('Add {0} for {1}' -f $AccessRights, $user))) {
                # Not read first: the add succeeds only where the monitor has no entry.
                Confirm-CalpermIntent -Mailbox $Record.mailbox -Action 'add' -FolderIdentity $folder.Identity -Rights @($AccessRights)
                $null = Invoke-CalpermExchange -Command 'Add-MailboxFolderPermission' -Parameters @{ Identity = $folder.Identity; User = $user; AccessRights = $AccessRights } -Tally $Tally
                return @{ Folder = $folder; Current = $null; Done = $true }
            }
            if ($Mode -eq 'Remove' -and $script:Cmdlet.ShouldProcess($folder.Identity, ('Remove {0}' -f $user))) {
                Confirm-CalpermIntent -Mailbox $Record.mailbox -Action 'remove' -FolderIdentity $folder.Identity
                $null = Invoke-CalpermExchange -Command 'Remove-MailboxFolderPermission' -Parameters @{ Identity = $folder.Identity; User = $user; Confirm = $false } -Tally $Tally
                return @{ Folder = $folder; Current = $null; Done = $true }
            }
            return @{ Folder = $folder; Current = (Get-CalpermMonitorRights -Identity $folder.Identity -Tally $Tally); Done = $false }
        } catch {
            if ($script:Stopped) { throw }
            $kind = Get-CalpermErrorKind $_
            if ($kind -eq 'entry-exists') {
                return @{ Folder = $folder; Current = (Get-CalpermMonitorRights -Identity $folder.Identity -Tally $Tally); Done = $false }
            }
            if ($kind -eq 'no-entry') { return @{ Folder = $folder; Current = $null; Done = $false } }
            if ($kind -ne 'not-found' -or -not $folder.Guessed) { throw }
            # The guessed name is not this mailbox's calendar: look it up by FolderType.
            $folder = Resolve-CalpermDefaultCalendar -Owner ([string]$Mailbox.PrimarySmtpAddress) -Tally $Tally
        }
    }
    @{ Folder = $null; Current = $null; Done = $false }
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

# --- Delta: only mailboxes created after a moment -------------------------------------------
# Exchange reads a date in -Filter in the session's culture (German 01.12.2026, US 12/01/2026), so
# the date goes in year first, yyyy-MM-ddTHH:mm:ss, which every culture reads alike. UNCONFIRMED:
# that Exchange Online reads it as UTC (no public source states a filter date's time zone); runs
# on a schedule use overlapping windows, so an offset of hours loses no mailbox.
function Get-CalpermCreatedFilter {
    if ([string]::IsNullOrWhiteSpace($CreatedAfter)) { return $null }
    $parsed = [datetime]::MinValue
    # A duration back from now (36h, 2d, 1w), for a runbook or task that runs on a schedule.
    if ($CreatedAfter.Trim() -match '^([0-9]+)([mhdw])$') {
        $minutes = @{ m = 1; h = 60; d = 1440; w = 10080 }[$Matches[2]] * [int]$Matches[1]
        $parsed = [datetime]::UtcNow.AddMinutes(-$minutes)
        return ("WhenCreated -gt '{0}'" -f $parsed.ToString('yyyy-MM-ddTHH:mm:ss', [System.Globalization.CultureInfo]::InvariantCulture))
    }
    $styles = [System.Globalization.DateTimeStyles]::AssumeUniversal -bor [System.Globalization.DateTimeStyles]::AdjustToUniversal
    $formats = [string[]]@('yyyy-MM-ddTHH:mm:ss', 'yyyy-MM-ddTHH:mm:ssZ', 'yyyy-MM-dd')
    if (-not [datetime]::TryParseExact($CreatedAfter.Trim(), $formats, [System.Globalization.CultureInfo]::InvariantCulture, $styles, [ref]$parsed)) {
        Stop-CalpermRun -Kind 'other' -Message ("CreatedAfter '{0}' is not a UTC date-time: write it as yyyy-MM-ddTHH:mm:ss, e.g. 2026-12-01T06:00:00, or as a duration back from now such as 2d." -f $CreatedAfter) -ExitCode 2
    }
    if ($Include.Count -gt 0 -or $MailboxesCsv) {
        Stop-CalpermRun -Kind 'other' -Message 'CreatedAfter selects from all mailboxes; leave out Include and MailboxesCsv, or CreatedAfter.' -ExitCode 2
    }
    "WhenCreated -gt '{0}'" -f $parsed.ToString('yyyy-MM-ddTHH:mm:ss', [System.Globalization.CultureInfo]::InvariantCulture)
}

# In a delta run each record says why its mailbox was visited: 'new' (created after CreatedAfter)
# or 'retried' (named in Retry).
$script:DeltaRole = @{}

# A delta run's mailboxes: those Exchange lists as created after CreatedAfter, then each Retry
# mailbox that was not among them, looked up by identity.
function Get-CalpermDeltaMailbox {
    param([scriptblock] $Enumerate)
    $seen = New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase)
    & $Enumerate | ForEach-Object {
        $address = [string]$_.PrimarySmtpAddress
        [void]$seen.Add($address)
        if ($CreatedAfter) { $script:DeltaRole[$address] = 'new' }
        $_
    }
    foreach ($identity in $Retry) {
        $identity = $identity.Trim()
        if (-not $identity -or $seen.Contains($identity)) { continue }
        [void]$seen.Add($identity)
        $script:DeltaRole[$identity] = 'retried'
        $found = Get-CalpermNamedMailbox -Identity $identity
        foreach ($mailbox in @($found)) {
            if ($mailbox -and $mailbox.PSObject.Properties['PrimarySmtpAddress']) { $script:DeltaRole[[string]$mailbox.PrimarySmtpAddress] = 'retried' }
            $mailbox
        }
    }
}

# New mailboxes are not usable for the first minutes (field-notes §10; CIPP waits 15 minutes). In
# a delta run, a mailbox Exchange has just listed whose calendar it says does not exist is taken
# for one of those: skipped as not-yet-usable, and the next --since run retries it.
# UNCONFIRMED: what Exchange answers for such a mailbox; inferred as its not-found error.
function Set-CalpermNotYetUsable {
    param([System.Collections.Specialized.OrderedDictionary] $Record)
    if ($Record.kind -ne 'not-found' -or -not $Record.Contains('delta')) { return }
    $Record.outcome = 'skipped'
    $Record.kind = 'not-yet-usable'
    $Record.message = 'Exchange lists the mailbox but not yet its calendar (a new mailbox is not usable for its first minutes); the next run with --since retries it. ' + $Record.message
}

# --- Folder cache: the calendars an earlier journal found (calperm --folders-from) ----------
# Tried first, like a guessed name: when Exchange says the folder does not exist (renamed, or the
# FolderId of a moved mailbox), the calendar is looked up by FolderType as usual.
$script:FolderCache = @{
}

# The cached calendar of a mailbox, tried like a guessed name (Guessed: a not-found falls back to
# the FolderType lookup), or $null.
function Get-CalpermCachedFolder {
    param([string] $Owner)
    $cached = $script:FolderCache[$Owner]
    if (-not $cached) { return $null }
    @{ Name = [string]$cached[0]; Identity = [string]$cached[1]; Guessed = $true }
}

# --- Which mailboxes ------------------------------------------------------------------------
$script:MonitorMailbox = $null
$script:MonitorUser = $null

# Recipients that can hold folder permissions (Add-MailboxFolderPermission -User: a mailbox, a
# mail user or a mail-enabled security group; field-notes §9).
$script:MonitorTypes = @('UserMailbox', 'SharedMailbox', 'RoomMailbox', 'EquipmentMailbox', 'LinkedMailbox', 'LinkedRoomMailbox',
    'SchedulingMailbox', 'TeamMailbox', 'MailUser', 'GuestMailUser', 'MailUniversalSecurityGroup')

# Resolves the monitor once, before any change: missing or ambiguous stops the run with
# Exchange's own message. It is looked up as a recipient, so a mail user or a mail-enabled
# security group is found too (RecipientTypeDetails is in Get-EXORecipient's default properties;
# inference from the Get-EXOMailbox minimum set, exchange.md §5).
function Resolve-CalpermMonitor {
    if ([string]::IsNullOrWhiteSpace($Monitor)) {
        # An empty identity would make Get-Recipient return every recipient (exchange.md §1.3).
        Stop-CalpermRun -Kind 'monitor-not-found' -Message 'The Monitor parameter is empty.' -ExitCode 2
    }
    try {
        $found = @(Get-EXORecipient -Identity $Monitor -ErrorAction Stop)
    } catch {
        $kind = Get-CalpermErrorKind $_
        if ($kind -eq 'not-found') { Stop-CalpermRun -Kind 'monitor-not-found' -Message $_.Exception.Message -ExitCode 2 }
        if ($kind -eq 'ambiguous') { Stop-CalpermRun -Kind 'monitor-ambiguous' -Message $_.Exception.Message -ExitCode 2 }
        Stop-CalpermRun -Kind 'other' -Message ('Could not look up the monitor: ' + $_.Exception.Message)
    }
    if ($found.Count -ne 1) {
        Stop-CalpermRun -Kind 'monitor-ambiguous' -Message ("The operation couldn't be performed because '{0}' matches multiple entries." -f $Monitor) -ExitCode 2
    }
    $type = [string]$found[0].RecipientTypeDetails
    if ($script:MonitorTypes -notcontains $type) {
        Stop-CalpermRun -Kind 'monitor-invalid' -Message ("The monitor '{0}' is a {1}, which cannot hold folder permissions: use a mailbox, a mail user or a mail-enabled security group." -f $Monitor, $type) -ExitCode 2
    }
    $script:MonitorMailbox = $found[0]
    $script:MonitorUser = [string]$found[0].PrimarySmtpAddress
    $tenant = Get-CalpermTenant
    Write-CalpermRecord ([ordered]@{
            type               = 'monitor'
            identity           = $Monitor
            displayName        = [string]$found[0].DisplayName
            primarySmtpAddress = $script:MonitorUser
            guid               = [string]$found[0].Guid
            organization       = $tenant.Organization
            tenantId           = $tenant.TenantId
        })
    Assert-CalpermJournalRun -Guid ([string]$found[0].Guid) -Tenant $tenant
}

# The tenant this session is connected to. Exchange Online: Get-ConnectionInformation (module
# 3.0+) lists this PowerShell instance's connections, like Get-PSSession, so no round trip; its
# Organization and TenantID properties are from Microsoft's cmdlet reference, not exchange.md.
# Exchange Server: not known here ($null); the monitor's Guid is what counts.
function Get-CalpermTenant {
    $tenant = @{ Organization = $null; TenantId = $null }
    try {
        $info = @(Get-ConnectionInformation -ErrorAction Stop) | Select-Object -First 1
        if ($info) {
            $tenant.Organization = [string]$info.Organization
            $tenant.TenantId = [string]$info.TenantID
        }
    } catch {
        Write-Verbose ('Get-ConnectionInformation: ' + $_.Exception.Message)
    }
    $tenant
}

# The run a resumed or undone journal records (calperm --resume / --from-journal): the same
# monitor (by Guid, else address) in the same tenant, or the run stops before any change.
$script:JournalRun = $null

function Assert-CalpermJournalRun {
    param([string] $Guid, [hashtable] $Tenant)
    $run = $script:JournalRun
    if (-not $run) { return }
    $differs = @()
    if ($run.Guid -and $Guid -and $run.Guid -ne $Guid) {
        $differs += ('the monitor: the journal''s is {0} (Guid {1}), this one is {2} (Guid {3})' -f $run.Address, $run.Guid, $script:MonitorUser, $Guid)
    } elseif (-not $run.Guid -and $run.Address -and $run.Address -ne $script:MonitorUser) {
        $differs += ('the monitor: the journal''s is {0}, this one is {1}' -f $run.Address, $script:MonitorUser)
    }
    if ($run.TenantId -and $Tenant.TenantId -and $run.TenantId -ne $Tenant.TenantId) {
        $differs += ('the tenant: the journal''s is {0} ({1}), this one is {2} ({3})' -f $run.Organization, $run.TenantId, $Tenant.Organization, $Tenant.TenantId)
    }
    if ($differs.Count -gt 0) {
        Stop-CalpermRun -Kind 'journal-mismatch' -Message ('The journal {0} is of another run; nothing was changed. It differs in {1}.' -f $run.Journal, ($differs -join '; and ')) -ExitCode 2
    }
}

function Test-CalpermIsMonitor {
    param($Mailbox)
    if (-not $script:MonitorMailbox) { return $false }
    ([string]$Mailbox.PrimarySmtpAddress -eq $script:MonitorUser) -or
    ($Mailbox.Guid -and [string]$Mailbox.Guid -eq [string]$script:MonitorMailbox.Guid)
}

$script:ExcludeSet = New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase)
foreach ($value in $Exclude) { [void]$script:ExcludeSet.Add($value.Trim()) }
# The Exclude values some mailbox matched, and the Include values Exchange did not find: the rest
# is reported at the end, so a typo does not silently grant an excluded mailbox.
$script:ExcludeMatched = New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase)
$script:IncludeNotFound = New-Object System.Collections.ArrayList

function Test-CalpermExcluded {
    param($Mailbox)
    $excluded = $false
    foreach ($property in 'PrimarySmtpAddress', 'UserPrincipalName', 'Alias', 'Name', 'DisplayName', 'Guid', 'ExternalDirectoryObjectId') {
        if ($Mailbox.PSObject.Properties[$property] -and $Mailbox.$property -and $script:ExcludeSet.Contains([string]$Mailbox.$property)) {
            [void]$script:ExcludeMatched.Add([string]$Mailbox.$property)
            $excluded = $true
        }
    }
    $excluded
}

# After every mailbox in scope was visited: a warning record naming the Include and Exclude
# values that matched no mailbox.
function Write-CalpermUnmatchedFilters {
    $values = @()
    foreach ($value in $Include) { if ($script:IncludeNotFound -contains $value.Trim()) { $values += ('Include ' + $value.Trim()) } }
    foreach ($value in $script:ExcludeSet) { if (-not $script:ExcludeMatched.Contains($value)) { $values += ('Exclude ' + $value) } }
    if ($values.Count -eq 0) { return }
    Write-CalpermRecord ([ordered]@{
            type    = 'warning'
            kind    = 'unmatched-filter'
            message = ('{0} value(s) matched no mailbox in scope: {1}. Exclude is compared with each mailbox''s PrimarySmtpAddress, UserPrincipalName, Alias, Name, DisplayName, Guid and ExternalDirectoryObjectId.' -f $values.Count, ($values -join '; '))
            values  = [string[]]$values
        })
}

function Get-CalpermCsvColumn {
    $header = @(Import-Csv -LiteralPath $MailboxesCsv | Select-Object -First 1)
    if ($header.Count -eq 0) { return $null }
    foreach ($name in 'PrimarySmtpAddress', 'UserPrincipalName', 'EmailAddress', 'Identity') {
        if ($header[0].PSObject.Properties[$name]) { return $name }
    }
    $null
}

# How many mailboxes will be visited, when that is known before enumerating.
function Get-CalpermExpectedTotal {
    if ($MailboxesCsv) { return @(Import-Csv -LiteralPath $MailboxesCsv).Count }
    if ($Include.Count -gt 0) { return $Include.Count }
    $null
}

# Get-EXOMailbox -Properties Languages (Languages is in no property set) may be refused by a
# tenant (field-notes §10): then no calendar name is guessed from a language, and each mailbox's
# calendar is found by FolderType (one more call per mailbox) instead of failing the run.
function Set-CalpermLanguagesRefused {
    param($ErrorRecord)
    $script:LanguagesRefused = $true
    Write-Warning ('Get-EXOMailbox -Properties Languages was refused ({0}): calendar names are not guessed; each default calendar is found by FolderType.' -f $ErrorRecord.Exception.Message)
}

# One named mailbox (from -Include or the CSV); a name Exchange does not know is reported failed.
function Get-CalpermNamedMailbox {
    param([string] $Identity)
    $Identity = $Identity.Trim()
    if (-not $Identity) { return }
    $tally = @{ calls = 0; retries = 0 }
    try {
        if (-not $script:LanguagesRefused) {
            try {
                return (Invoke-CalpermExchange -Command 'Get-EXOMailbox' -Parameters @{ Identity = $Identity; Properties = @('Languages') } -Tally $tally)
            } catch {
                # Only an error that is not about the mailbox itself can be the refusal.
                if ((Get-CalpermErrorKind $_) -ne 'other') { throw }
                $refusal = $_
            }
            $found = Invoke-CalpermExchange -Command 'Get-EXOMailbox' -Parameters @{ Identity = $Identity } -Tally $tally
            Set-CalpermLanguagesRefused $refusal
            return $found
        }
        Invoke-CalpermExchange -Command 'Get-EXOMailbox' -Parameters @{ Identity = $Identity } -Tally $tally
    } catch {
        $record = New-CalpermMailboxRecord -Address $Identity
        $record.kind = Get-CalpermFailureKind (Get-CalpermErrorKind $_)
        if ($record.kind -eq 'not-found') { [void]$script:IncludeNotFound.Add($Identity) }
        $record.message = $_.Exception.Message
        $record.retries = $tally.retries
        Write-CalpermRecord $record
    }
}

# The mailboxes in scope, one at a time. Exchange Online streams them: the list of every mailbox
# is never held in memory.
function Get-CalpermTargetMailbox {
    $created = Get-CalpermCreatedFilter
    if ($MailboxesCsv) {
        $column = Get-CalpermCsvColumn
        if (-not $column) { Stop-CalpermRun -Kind 'other' -Message ('{0} has no PrimarySmtpAddress, UserPrincipalName, EmailAddress or Identity column.' -f $MailboxesCsv) -ExitCode 2 }
        Import-Csv -LiteralPath $MailboxesCsv | ForEach-Object { Get-CalpermNamedMailbox -Identity ([string]$_.$column) }
    } elseif ($Include.Count -gt 0) {
        foreach ($identity in $Include) { Get-CalpermNamedMailbox -Identity $identity }
    } else {
        Get-CalpermDeltaMailbox -Enumerate { Get-CalpermAllMailbox -Created $created }
    }
}

# Every mailbox of the RecipientTypes (created after CreatedAfter, when given).
function Get-CalpermAllMailbox {
    param([string] $Created)
        $query = @{ ResultSize = 'Unlimited'; RecipientTypeDetails = $RecipientTypes }
        if ($Created) { $query.Filter = $Created }
        if (-not $script:LanguagesRefused) {
            $streamed = 0
            try {
                Get-EXOMailbox @query -Properties Languages -ErrorAction Stop | ForEach-Object { $streamed++; $_ }
                return
            } catch {
                # Once a mailbox went on, an error is not the refusal (and must not restart the list).
                if ($streamed -gt 0 -or (Get-CalpermErrorKind $_) -ne 'other') { throw }
                Set-CalpermLanguagesRefused $_
            }
        }
        Get-EXOMailbox @query
}

# A mailbox record with every field present, as the report expects: of a mailbox Exchange
# returned, or only of an address (a mailbox Exchange could not find, a journal entry).
function New-CalpermMailboxRecord {
    param($Mailbox, [string] $Address)
    $record = [ordered]@{
        type           = 'mailbox'
        mailbox        = $Address
        outcome        = 'failed'
        displayName    = $null
        recipientType  = $null
        folder         = $null
        folderIdentity = $null
        previous       = $null
        rights         = $null
        kind           = $null
        message        = $null
        retries        = 0
        calls          = 0
    }
    if ($Mailbox) {
        $record.mailbox = [string]$Mailbox.PrimarySmtpAddress
        $record.displayName = [string]$Mailbox.DisplayName
        $record.recipientType = [string]$Mailbox.RecipientTypeDetails
    }
    if ($script:DeltaRole.ContainsKey($record.mailbox)) { $record.delta = $script:DeltaRole[$record.mailbox] }
    $record
}

# Runs one mailbox's work and always ends with its record: a failure becomes the record's kind
# and message. With -Changes, a run stopped before this mailbox's change says so and stops the
# loop (nothing was changed here). -OnFailure runs after a failure is recorded. The body sees the
# caller's variables ($record, $tally, …).
function Invoke-CalpermMailboxRecord {
    param($Record, $Tally, [scriptblock] $Body, [switch] $Changes, [scriptblock] $OnFailure)
    try {
        & $Body
    } catch {
        $Record.outcome = 'failed'
        if ($Changes -and $script:Stopped) {
            $Record.kind = 'interrupted'
            $Record.message = 'The run was stopped before this mailbox was changed.'
            throw
        }
        $Record.kind = Get-CalpermFailureKind (Get-CalpermErrorKind $_)
        $Record.message = $_.Exception.Message
        if ($OnFailure) { & $OnFailure }
    } finally {
        $Record.calls = $Tally.calls
        $Record.retries = $Tally.retries
        Write-CalpermRecord $Record
    }
}

# Skips the monitor's own mailbox and excluded ones; returns $true when the record says why.
function Test-CalpermSkip {
    param($Mailbox, [System.Collections.Specialized.OrderedDictionary] $Record)
    if (Test-CalpermIsMonitor $Mailbox) {
        # Excluded too, perhaps: then the Exclude value matched.
        $null = Test-CalpermExcluded $Mailbox
        $Record.outcome = 'skipped'; $Record.kind = 'monitor'; return $true
    }
    if (Test-CalpermExcluded $Mailbox) { $Record.outcome = 'skipped'; $Record.kind = 'excluded'; return $true }
    $false
}

# --- Granting -------------------------------------------------------------------------------
# Fewest round trips: on a tenant where most calendars have no entry for the monitor yet, Add is
# tried first (one call per mailbox); once most mailboxes turn out to have one already (a rerun),
# the current entry is read first instead (one call when nothing needs changing). -WhatIf always
# reads first, so its would-add / would-update are exact.
$script:EntriesSeen = 0
$script:AbsentSeen = 0
$script:ResumeSet = New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase)
foreach ($value in $ResumeDone) { [void]$script:ResumeSet.Add($value) }

function Test-CalpermReadFirst {
    $script:WhatIfMode -or ($script:EntriesSeen -gt $script:AbsentSeen)
}

function Invoke-CalpermGrant {
    param($Mailbox)
    $record = New-CalpermMailboxRecord $Mailbox
    $owner = $record.mailbox
    $tally = @{ calls = 0; retries = 0 }
    Invoke-CalpermMailboxRecord -Record $record -Tally $tally -Changes -OnFailure { Set-CalpermNotYetUsable $record } -Body {
        if (Test-CalpermSkip $Mailbox $record) { return }
        if ($script:ResumeSet.Contains($owner)) { $record.outcome = 'skipped'; $record.kind = 'resumed'; return }

        $mode = 'Add'
        if (Test-CalpermReadFirst) { $mode = 'Read' }
        $first = Invoke-CalpermFirstCall -Mailbox $Mailbox -Tally $tally -Record $record -Mode $mode
        $folder = $first.Folder
        if (-not $folder) { $record.outcome = 'no-calendar'; return }
        $current = $first.Current
        $added = $first.Done
        if ($added) {
            $script:AbsentSeen++
            $record.outcome = 'added'
            $record.rights = @($AccessRights)
            return
        }
        if ($null -eq $current) { $script:AbsentSeen++ } else { $script:EntriesSeen++ }
        $decision = Get-CalpermGrantDecision -Current $current -Target $AccessRights
        if ($null -ne $current) { $record.previous = @($current) }
        switch ($decision.Action) {
            'add' {
                if ($script:Cmdlet.ShouldProcess($folder.Identity, ('Add {0} for {1}' -f $AccessRights, $script:MonitorUser))) {
                    # Read first: the monitor has no entry (previous is known to be none).
                    Confirm-CalpermIntent -Mailbox $owner -Action 'add' -FolderIdentity $folder.Identity -Previous @() -Rights @($AccessRights)
                    $null = Invoke-CalpermExchange -Command 'Add-MailboxFolderPermission' -Parameters @{ Identity = $folder.Identity; User = $script:MonitorUser; AccessRights = $AccessRights } -Tally $tally
                    $record.outcome = 'added'
                } else {
                    $record.outcome = 'would-add'
                }
                $record.rights = @($AccessRights)
            }
            'update' {
                $rights = [string[]]@($decision.Rights)
                if ($script:Cmdlet.ShouldProcess($folder.Identity, ('Raise {0} from {1} to {2}' -f $script:MonitorUser, ($current -join ','), ($rights -join ',')))) {
                    Confirm-CalpermIntent -Mailbox $owner -Action 'set' -FolderIdentity $folder.Identity -Previous @($current) -Rights @($rights)
                    $null = Invoke-CalpermExchange -Command 'Set-MailboxFolderPermission' -Parameters @{ Identity = $folder.Identity; User = $script:MonitorUser; AccessRights = $rights } -Tally $tally
                    $record.outcome = 'updated'
                } else {
                    $record.outcome = 'would-update'
                }
                $record.rights = @($rights)
            }
            'unchanged' { $record.outcome = 'unchanged'; $record.rights = @($current) }
            'kept-higher' { $record.outcome = 'kept-higher'; $record.rights = @($current) }
            default {
                $record.outcome = 'failed'
                $record.kind = 'other'
                $record.rights = @($current)
                $record.message = ('The monitor has {0}; adding {1} would need a right that cannot be expressed without lowering one. Left unchanged.' -f ($current -join ','), $AccessRights)
            }
        }
    }
}

# --- Steps ----------------------------------------------------------------------------------
# Runs one step. Inside it, Stop-CalpermRun (prelude) is shadowed: a stop from the partials (a
# monitor that is not found) ends this step with a
# 'failed' step record instead of ending the run, and the steps that do not need it still run.
# The body reports through $script:StepOutcome and $script:StepMessage, or through its items.
function Invoke-CalpermSetupStep {
    param([string] $Step, [scriptblock] $Body, [switch] $ReportsItself)
    function Stop-CalpermRun {
        param([string] $Kind, [string] $Message, [int] $ExitCode = 1)
        $script:StepStop = '{0}: {1}' -f $Kind, $Message
        throw ('calperm step stopped: ' + $Kind)
    }
    $script:StepStop = $null
    $script:StepOutcome = $null
    $script:StepMessage = $null
    $script:StepItems.Clear()
    $script:StepFirstMessage = $null
    try {
        & $Body
    } catch {
        $message = $script:StepStop
        if (-not $message) { $message = $_.Exception.Message }
        Write-CalpermStep -Step $Step -Outcome 'failed' -Message $message
        return
    }
    if ($ReportsItself) { return }
    $outcome = $script:StepOutcome
    if (-not $outcome) { $outcome = Get-CalpermStepOutcome @($script:StepItems) }
    $message = $script:StepMessage
    if (-not $message) { $message = $script:StepFirstMessage }
    Write-CalpermStep -Step $Step -Outcome $outcome -Message $message
}

# The reason a step is skipped, or $null when every step it needs went well enough.
function Get-CalpermMissingStep {
    param([string[]] $Needs)
    if ($script:Stopped) { return 'The run was stopped before this step.' }
    foreach ($need in $Needs) {
        $status = $script:StepStatus[$need]
        if ($status -eq 'failed' -or $status -eq 'skipped') { return ('Needs the step {0}, which {1}.' -f $need, $status) }
    }
    $null
}

function Invoke-CalpermSetupStepAfter {
    param([string] $Step, [string[]] $Needs, [scriptblock] $Body, [switch] $ReportsItself)
    $missing = Get-CalpermMissingStep $Needs
    if ($missing) {
        Write-CalpermStep -Step $Step -Outcome 'skipped' -Message $missing
        return
    }
    Invoke-CalpermSetupStep -Step $Step -Body $Body -ReportsItself:$ReportsItself
}

# The grant step's outcome, from the mailbox outcomes it reported.
function Complete-CalpermGrantStep {
    $parts = @()
    foreach ($outcome in @($script:Counts.Keys | Sort-Object)) { $parts += ('{0} {1}' -f $script:Counts[$outcome], $outcome) }
    $total = 0
    foreach ($value in $script:Counts.Values) { $total += [int]$value }
    $script:StepMessage = '{0} mailbox(es): {1}.' -f $total, ($parts -join ', ')
    if ($total -eq 0) { $script:StepMessage = 'No mailbox in scope.' }
    $count = { param($name) [int]$script:Counts[$name] }
    if ((& $count 'failed') -gt 0) {
        $script:StepOutcome = 'failed'
    } elseif ((& $count 'added') + (& $count 'updated') -gt 0) {
        $script:StepOutcome = 'changed'
    } elseif ((& $count 'would-add') + (& $count 'would-update') -gt 0) {
        $script:StepOutcome = 'would-change'
    } else {
        $script:StepOutcome = 'unchanged'
    }
}

# --- Run ------------------------------------------------------------------------------------
Write-CalpermRecord ([ordered]@{ type = 'start'; script = 'setup'; monitor = $Monitor; accessRights = $AccessRights; whatIf = $script:WhatIfMode; calpermVersion = '0.1.0'; total = (Get-CalpermExpectedTotal) })
try {
    Invoke-CalpermSetupStep -Step 'execution-policy' -ReportsItself -Body { Invoke-CalpermExecutionPolicy -Scope $ExecutionPolicyScope }

    Invoke-CalpermSetupStep -Step 'exchange-connect' -Body {
        try {
            Connect-CalpermExchange
        } catch {
            throw ('Could not connect to Exchange: ' + $_.Exception.Message)
        }
        $script:StepOutcome = 'ok'
        $script:StepMessage = 'Connected (exo).'
    }

    Invoke-CalpermSetupStepAfter -Step 'grant' -Needs 'exchange-connect' -Body {
        Assert-CalpermLocale
        Resolve-CalpermMonitor
        Get-CalpermTargetMailbox | ForEach-Object { Invoke-CalpermGrant -Mailbox $_ }
        Write-CalpermUnmatchedFilters
        Complete-CalpermGrantStep
    }
} catch {
    Write-CalpermRecord ([ordered]@{ type = 'fatal'; kind = 'other'; message = $_.Exception.Message })
    Set-CalpermExitCode 1
} finally {
    Disconnect-CalpermExchange
}
Complete-CalpermRun
# ===== end of 01-setup.ps1 =====

# ===== 02-app-registration.ps1 (script 2 of 3) =====
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
# ===== end of 02-app-registration.ps1 =====

# ===== 03-app-exchange.ps1 (script 3 of 3) =====
<#
.SYNOPSIS
    The Exchange Online side of the connector's app, after it was registered in Entra ID by
    app-registration.ps1: whether the app can use EWS.
.DESCRIPTION
    Signs in to Exchange only, never to Microsoft Graph: the two modules cannot sign in within one
    PowerShell process with current module versions. It takes the app's IDs as parameters, from
    the outputs of app-registration.ps1 (calperm passes them on; by hand, copy them).
      ews-settings, ews-readiness
                         whether the app ClientId can use EWS today, and until when (changes
                         nothing)
.PARAMETER ClientId
    The app's application (client) ID: the output ClientId of app-registration.ps1.
.PARAMETER UserPrincipalName
    Admin account for the interactive Exchange Online sign-in (optional).
.PARAMETER RecordMarker
    Set by calperm: report results as JSON lines starting with this marker. Leave empty when
    running the script by hand; results are then PowerShell objects.
.EXAMPLE
    .\03-app-exchange.ps1 -ClientId 11111111-2222-3333-4444-555555555555
.NOTES
    Needs the module ExchangeOnlineManagement.
    Rendered by calperm 0.1.0 (connection: exo) as a part of
    `calperm render setup`; `calperm run setup` runs it after app-registration.
    It runs unchanged on Windows PowerShell 5.1 and PowerShell 7.4 or later
    (ExchangeOnlineManagement 3.10 lists 7.6); on other versions it warns.
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [string] $ClientId = '',
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
Write-CalpermRecord ([ordered]@{ type = 'start'; script = 'app-exchange'; monitor = $null; accessRights = $null; whatIf = $script:WhatIfMode; total = $null })
try {
    Connect-CalpermExchangeOrStop
    Invoke-CalpermEwsReadiness -ConnectorAppId $ClientId
} catch {
    Write-CalpermUnexpected $_
} finally {
    Disconnect-CalpermExchange
}
Complete-CalpermRun
# ===== end of 03-app-exchange.ps1 =====
