<#
.SYNOPSIS
    Reports the monitor account's rights on the default Calendar folder of every mailbox.
.DESCRIPTION
    Changes nothing. For each mailbox in scope, finds its default calendar by FolderType (whatever
    its language, independently of the name the grant guesses first) and reports the monitor's
    current rights there:
      meets        the monitor has the AccessRights role or more
      below        the monitor has an entry that lacks part of it
      missing      the monitor has no entry
      skipped      the monitor's own mailbox or an excluded one
      no-calendar  the mailbox has no default calendar
      failed       with a kind (not-found, access-denied, throttled or other) and Exchange's message
    Exits with 1 when any mailbox is below, missing or failed.
.PARAMETER Monitor
    The account that gets the rights (UPN or SMTP address recommended).
.PARAMETER AccessRights
    The role the monitor should have (Reviewer = FolderVisible, ReadItems).
.PARAMETER Locale
    'auto' (each mailbox's own language) or the locale code whose Calendar name to expect.
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
    `calperm render audit`, or run it with `calperm run audit`. It runs unchanged on
    Windows PowerShell 5.1 and PowerShell 7.4 or later (ExchangeOnlineManagement 3.10 lists 7.6); on
    other versions it warns.
.EXAMPLE
    .\audit.ps1 | Where-Object outcome -ne 'meets'
    Lists the calendars where the monitor lacks the rights.
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [string] $Monitor = 'Monitor',
    [ValidateSet('Owner', 'PublishingEditor', 'Editor', 'PublishingAuthor', 'Author', 'NonEditingAuthor', 'Reviewer', 'Contributor', 'AvailabilityOnly', 'LimitedDetails')]
    [string] $AccessRights = 'Reviewer',
    [string] $Locale = 'auto',
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
    # Set by calperm --parallel: 'enumerate' writes the mailboxes to QueueFile, 'worker' reads them from standard input.
    [ValidateSet('', 'enumerate', 'worker')] [string] $Queue = '',
    [string] $QueueFile = '',
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
    # Retried like a mailbox's calls: with --parallel every worker looks the monitor up at once,
    # and the tenant's concurrency limit refuses some of them (field-notes §3).
    $lookup = @{ calls = 0; retries = 0 }
    try {
        $found = @(Invoke-CalpermExchange -Command 'Get-EXORecipient' -Parameters @{ Identity = $Monitor } -Tally $lookup)
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

# --- Auditing -------------------------------------------------------------------------------
# Reads the monitor's rights on every default calendar and says whether they meet the target:
# meets (the target or more), below (an entry that lacks part of it), missing (no entry).
# The audit checks the grant independently: it finds each default calendar by FolderType, never
# by the guessed name the grant tries first (one more call per mailbox; it changes nothing).
# With --folders-from it trusts the calendars an earlier journal recorded instead (one call).
function Invoke-CalpermAudit {
    param($Mailbox)
    $record = New-CalpermMailboxRecord $Mailbox
    $tally = @{ calls = 0; retries = 0 }
    Invoke-CalpermMailboxRecord -Record $record -Tally $tally -Body {
        if (Test-CalpermSkip $Mailbox $record) { return }
        $first = Invoke-CalpermFirstCall -Mailbox $Mailbox -Tally $tally -Record $record -Mode 'Read' -ByFolderType
        if (-not $first.Folder) { $record.outcome = 'no-calendar'; return }
        $current = $first.Current
        if ($null -eq $current) { $record.outcome = 'missing'; return }
        $record.previous = @($current)
        $record.rights = @($current)
        $decision = Get-CalpermGrantDecision -Current $current -Target $AccessRights
        if ($decision.Action -eq 'unchanged' -or $decision.Action -eq 'kept-higher') { $record.outcome = 'meets' } else { $record.outcome = 'below' }
    }
}

# --- Queue: calperm run --parallel ----------------------------------------------------------
# -Queue enumerate lists the mailboxes in scope once and writes the facts the script uses, one
# JSON line per mailbox, to -QueueFile (calperm's private temp file: the queue, on disk). -Queue
# worker takes mailboxes from standard input instead of listing them: one JSON line per mailbox,
# the next sent by calperm after this mailbox's record; an empty line or the end of input ends
# the run. The same input carries calperm's 'ok' to an intent (Confirm-CalpermIntent), always
# between a mailbox line and that mailbox's record, so the two never mix.
$script:QueueProperties = @('PrimarySmtpAddress', 'DisplayName', 'RecipientTypeDetails', 'Languages', 'Guid', 'UserPrincipalName',
    'Alias', 'Name', 'ExternalDirectoryObjectId')

function Write-CalpermQueueFile {
    $writer = New-Object System.IO.StreamWriter -ArgumentList $QueueFile, $false, (New-Object System.Text.UTF8Encoding($false))
    try {
        Get-CalpermTargetMailbox | ForEach-Object {
            # Matched here, so the unmatched --exclude values are named once, by this process.
            $null = Test-CalpermExcluded $_
            $facts = [ordered]@{}
            foreach ($name in $script:QueueProperties) {
                $value = $null
                if ($_.PSObject.Properties[$name]) { $value = $_.$name }
                if ($name -eq 'Languages') { $facts[$name] = @($value | Where-Object { $_ } | ForEach-Object { [string]$_ }) } elseif ($null -eq $value) { $facts[$name] = $null } else { $facts[$name] = [string]$value }
            }
            $writer.WriteLine((ConvertTo-Json -InputObject $facts -Compress -Depth 3))
        }
    } finally {
        $writer.Dispose()
    }
}

function Read-CalpermQueue {
    while ($true) {
        $line = [Console]::In.ReadLine()
        if (-not $line) { return }
        ConvertFrom-Json -InputObject $line
    }
}

# --- Run: every mailbox in scope, one record each -------------------------------------------
$script:QueueMode = [string](Get-Variable -Name Queue -Scope Script -ValueOnly -ErrorAction SilentlyContinue)
if ($script:QueueMode -ne 'worker') { Write-CalpermRecord ([ordered]@{ type = 'start'; script = 'audit'; monitor = $Monitor; accessRights = $AccessRights; whatIf = $script:WhatIfMode; calpermVersion = '0.1.0'; total = (Get-CalpermExpectedTotal); createdAfter = $(if ($CreatedAfter) { $CreatedAfter } else { $null }); since = $(if ($Since) { $Since } else { $null }) }) }
try {
    Assert-CalpermLocale
    Connect-CalpermExchangeOrStop
    Resolve-CalpermMonitor
    if ($script:QueueMode -eq 'worker') {
        Read-CalpermQueue | ForEach-Object { Invoke-CalpermAudit -Mailbox $_ }
    } elseif ($script:QueueMode -eq 'enumerate') {
        Write-CalpermQueueFile
        Write-CalpermUnmatchedFilters
    } else {
        Get-CalpermTargetMailbox | ForEach-Object { Invoke-CalpermAudit -Mailbox $_ }
        Write-CalpermUnmatchedFilters
    }
} catch {
    Write-CalpermUnexpected $_
} finally {
    Disconnect-CalpermExchange
}
Complete-CalpermRun
