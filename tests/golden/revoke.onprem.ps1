<#
.SYNOPSIS
    Removes the monitor account's entry from the default Calendar folder of every mailbox.
.DESCRIPTION
    For each mailbox in scope, finds its default calendar whatever its language and removes the
    monitor's entry (all of its rights) there:
      removed      the entry was removed
      absent       the monitor had no entry
      skipped      the monitor's own mailbox or an excluded one
      no-calendar  the mailbox has no default calendar
      failed       with a kind (not-found, access-denied, throttled, other) and Exchange's message
    To undo one grant exactly, render this script with `calperm render revoke --from-journal FILE`.
    With -WhatIf nothing is changed and the outcomes are would-remove / would-restore.
.PARAMETER Monitor
    The account whose calendar rights are removed.
.PARAMETER Locale
    'auto' (each mailbox's own language) or the locale code whose Calendar name to expect.
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
.PARAMETER MaxRetries
    How often a throttled or transient call is retried before the mailbox is reported failed.
.PARAMETER RetryDelayMs
    The first back-off delay in milliseconds; it doubles on each retry (with jitter, at most 60 s).
.PARAMETER RecordMarker
    Set by calperm: report results as JSON lines starting with this marker. Leave empty when
    running the script by hand; results are then PowerShell objects.
.NOTES
    Rendered by calperm 0.1.0 (connection: onprem). Render it again with
    `calperm render revoke`, or run it with `calperm run revoke`. It runs unchanged on
    Windows PowerShell 5.1 and PowerShell 7.2 or later.
.EXAMPLE
    .\revoke.ps1 -WhatIf
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [string] $Monitor = 'Monitor',
    [string] $Locale = 'auto',
    # Exchange server FQDN.
    [string] $Server = 'mail01.contoso.local',
    # Mailbox types in scope (RecipientTypeDetails).
    [string[]] $RecipientTypes = @('UserMailbox', 'SharedMailbox', 'RoomMailbox', 'EquipmentMailbox'),
    # Only these mailboxes (empty: every mailbox of the types above).
    [string[]] $Include = @(),
    # Never these mailboxes (SMTP address, UPN, alias, name, display name or GUID).
    [string[]] $Exclude = @(),
    # Only the mailboxes listed in this CSV file (empty: not used).
    [string] $MailboxesCsv = '',
    # Retries of a throttled or transient call, and the first back-off delay (doubles each time).
    [ValidateRange(0, 20)] [int] $MaxRetries = 6,
    [ValidateRange(0, 60000)] [int] $RetryDelayMs = 1000,
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
    # calperm reads the records as UTF-8, whatever the console code page.
    [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding($false)
}

# Reports one record. Run by calperm (-RecordMarker given): one JSON line behind the marker.
# Run by hand: results as objects on the pipeline, the rest as verbose or warning messages.
function Write-CalpermRecord {
    param([Parameter(Mandatory = $true)] [System.Collections.Specialized.OrderedDictionary] $Record)
    if ($Record['type'] -eq 'mailbox') {
        $outcome = [string]$Record['outcome']
        $script:Counts[$outcome] = 1 + [int]$script:Counts[$outcome]
        if ($outcome -eq 'failed' -or $outcome -eq 'below' -or $outcome -eq 'missing') { Set-CalpermExitCode 1 }
    }
    if (($Record['type'] -eq 'step' -or $Record['type'] -eq 'item') -and $Record['outcome'] -eq 'failed') { Set-CalpermExitCode 1 }
    if ($RecordMarker) {
        [Console]::Out.WriteLine($RecordMarker + (ConvertTo-Json -InputObject $Record -Compress -Depth 5))
        return
    }
    switch ($Record['type']) {
        'fatal' { Write-Warning ('{0}: {1}' -f $Record['kind'], $Record['message']) }
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
# Exchange Online V3 errors read '<LocId>|<Exception.Type>|<text>' (reference: exchange.md §2.1);
# typed catch blocks do not work with them, so errors are classified by exception type name first
# and by text only where no type name exists (throttling has no confirmed exact text).
function Get-CalpermErrorKind {
    param($ErrorRecord)
    $text = [string]$ErrorRecord.Exception.Message
    if ($ErrorRecord.CategoryInfo) { $text += ' ' + [string]$ErrorRecord.CategoryInfo.Reason }
    if ($text -match 'UserAlreadyExistsInPermissionEntryException') { return 'entry-exists' }
    if ($text -match 'UserNotFoundInPermissionEntryException') { return 'no-entry' }
    if ($text -match 'ManagementObjectAmbiguousException') { return 'ambiguous' }
    if ($text -match '(?i)micro delay|throttl|server ?busy|TooManyRequests|Too Many Requests|\b429\b|exceeded the maximum number of connections') { return 'throttled' }
    if ($text -match '(?i)TransientException|HttpStatusCode=5\d\d|\b50[234]\b|temporarily unavailable|timed out') { return 'transient' }
    if ($text -match 'ManagementObjectNotFoundException|NotFoundException') { return 'not-found' }
    if ($text -match '(?i)AccessDenied|Access is denied|UnauthorizedAccess|Forbidden|\b403\b') { return 'access-denied' }
    'other'
}

# The kind a failed mailbox is reported with (design.md "Outcomes").
function Get-CalpermFailureKind {
    param([string] $Kind)
    switch ($Kind) {
        'throttled' { 'throttled' }
        'transient' { 'throttled' }
        'not-found' { 'not-found' }
        'access-denied' { 'access-denied' }
        default { 'other' }
    }
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

# The expected name of the mailbox's default calendar, or $null when there is no good guess.
function Get-CalpermExpectedCalendarName {
    param($Mailbox)
    if ($Locale -ne 'auto') { return $script:CalendarNames[$Locale.ToLowerInvariant()] }
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
# Returns Name and Identity ('<mailbox>:<FolderId>', language-proof) or $null.
function Resolve-CalpermDefaultCalendar {
    param([string] $Owner, [hashtable] $Tally)
    $folders = @(Invoke-CalpermExchange -Command 'Get-MailboxFolderStatistics' -Parameters @{ Identity = $Owner; FolderScope = 'Calendar' } -Tally $Tally)
    $calendars = @($folders | Where-Object { [string]$_.FolderType -eq 'Calendar' } |
        Sort-Object { ([string]$_.FolderPath).Trim('/').Split('/').Count })
    if ($calendars.Count -eq 0) { return $null }
    $default = $calendars[0]
    @{ Name = [string]$default.Name; Identity = ('{0}:{1}' -f $Owner, [string]$default.FolderId); Guessed = $false }
}

# The folder to try first for a mailbox: the guessed name, else the FolderType lookup.
function Get-CalpermFirstFolder {
    param($Mailbox, [hashtable] $Tally)
    $owner = [string]$Mailbox.PrimarySmtpAddress
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
        $folder = Resolve-CalpermDefaultCalendar -Owner ([string]$Mailbox.PrimarySmtpAddress) -Tally $Tally
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
# Connection: onprem (calperm --connection).
# Exchange Server: a Kerberos session to http://SERVER/PowerShell/ with the signed-in Windows
# account (http, not https: Kerberos encrypts the payload). WSMan remoting needs a Windows client.
# Inside the Exchange Management Shell the cmdlets are already there and are used as they are.
function Connect-CalpermExchange {
    if (Get-Command -Name Get-MailboxFolderPermission -ErrorAction SilentlyContinue) { return }
    $uri = 'http://{0}/PowerShell/' -f $Server
    $script:ExchangeSession = New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri $uri -Authentication Kerberos
    $null = Import-PSSession $script:ExchangeSession -DisableNameChecking -AllowClobber
}
function Disconnect-CalpermExchange {
    if ($script:ExchangeSession) { Remove-PSSession $script:ExchangeSession -ErrorAction SilentlyContinue }
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

# --- Which mailboxes ------------------------------------------------------------------------
$script:MonitorMailbox = $null
$script:MonitorUser = $null

# Resolves the monitor once, before any change: missing or ambiguous stops the run with
# Exchange's own message.
function Resolve-CalpermMonitor {
    if ([string]::IsNullOrWhiteSpace($Monitor)) {
        # An empty identity would make Get-Mailbox return every mailbox (exchange.md §1.3).
        Stop-CalpermRun -Kind 'monitor-not-found' -Message 'The Monitor parameter is empty.' -ExitCode 2
    }
    try {
        $found = @(Get-Mailbox -Identity $Monitor -ErrorAction Stop)
    } catch {
        $kind = Get-CalpermErrorKind $_
        if ($kind -eq 'not-found') { Stop-CalpermRun -Kind 'monitor-not-found' -Message $_.Exception.Message -ExitCode 2 }
        if ($kind -eq 'ambiguous') { Stop-CalpermRun -Kind 'monitor-ambiguous' -Message $_.Exception.Message -ExitCode 2 }
        Stop-CalpermRun -Kind 'other' -Message ('Could not look up the monitor: ' + $_.Exception.Message)
    }
    if ($found.Count -ne 1) {
        Stop-CalpermRun -Kind 'monitor-ambiguous' -Message ("The operation couldn't be performed because '{0}' matches multiple entries." -f $Monitor) -ExitCode 2
    }
    $script:MonitorMailbox = $found[0]
    $script:MonitorUser = [string]$found[0].PrimarySmtpAddress
    Write-CalpermRecord ([ordered]@{
            type               = 'monitor'
            identity           = $Monitor
            displayName        = [string]$found[0].DisplayName
            primarySmtpAddress = $script:MonitorUser
        })
}

function Test-CalpermIsMonitor {
    param($Mailbox)
    if (-not $script:MonitorMailbox) { return $false }
    ([string]$Mailbox.PrimarySmtpAddress -eq $script:MonitorUser) -or
    ($Mailbox.Guid -and [string]$Mailbox.Guid -eq [string]$script:MonitorMailbox.Guid)
}

$script:ExcludeSet = New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase)
foreach ($value in $Exclude) { [void]$script:ExcludeSet.Add($value.Trim()) }

function Test-CalpermExcluded {
    param($Mailbox)
    foreach ($property in 'PrimarySmtpAddress', 'UserPrincipalName', 'Alias', 'Name', 'DisplayName', 'Guid', 'ExternalDirectoryObjectId') {
        if ($Mailbox.PSObject.Properties[$property] -and $Mailbox.$property -and $script:ExcludeSet.Contains([string]$Mailbox.$property)) { return $true }
    }
    $false
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

# One named mailbox (from -Include or the CSV); a name Exchange does not know is reported failed.
function Get-CalpermNamedMailbox {
    param([string] $Identity)
    $Identity = $Identity.Trim()
    if (-not $Identity) { return }
    $tally = @{ calls = 0; retries = 0 }
    try {
        Invoke-CalpermExchange -Command 'Get-Mailbox' -Parameters @{ Identity = $Identity } -Tally $tally
    } catch {
        $record = New-CalpermMailboxRecord -Address $Identity
        $record.kind = Get-CalpermFailureKind (Get-CalpermErrorKind $_)
        $record.message = $_.Exception.Message
        $record.retries = $tally.retries
        Write-CalpermRecord $record
    }
}

# Streams the mailboxes in scope, one at a time: the list of every mailbox is never held in memory.
function Get-CalpermTargetMailbox {
    if ($MailboxesCsv) {
        $column = Get-CalpermCsvColumn
        if (-not $column) { Stop-CalpermRun -Kind 'other' -Message ('{0} has no PrimarySmtpAddress, UserPrincipalName, EmailAddress or Identity column.' -f $MailboxesCsv) -ExitCode 2 }
        Import-Csv -LiteralPath $MailboxesCsv | ForEach-Object { Get-CalpermNamedMailbox -Identity ([string]$_.$column) }
    } elseif ($Include.Count -gt 0) {
        foreach ($identity in $Include) { Get-CalpermNamedMailbox -Identity $identity }
    } else {
        Get-Mailbox -ResultSize Unlimited -RecipientTypeDetails $RecipientTypes
    }
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
    $record
}

# Skips the monitor's own mailbox and excluded ones; returns $true when the record says why.
function Test-CalpermSkip {
    param($Mailbox, [System.Collections.Specialized.OrderedDictionary] $Record)
    if (Test-CalpermIsMonitor $Mailbox) { $Record.outcome = 'skipped'; $Record.kind = 'monitor'; return $true }
    if (Test-CalpermExcluded $Mailbox) { $Record.outcome = 'skipped'; $Record.kind = 'excluded'; return $true }
    $false
}

# --- Revoking -------------------------------------------------------------------------------
# Without a journal: removes the monitor's entry from every default calendar in scope.
function Invoke-CalpermRevoke {
    param($Mailbox)
    $record = New-CalpermMailboxRecord $Mailbox
    $tally = @{ calls = 0; retries = 0 }
    try {
        if (Test-CalpermSkip $Mailbox $record) { return }
        $mode = 'Remove'
        if ($script:WhatIfMode) { $mode = 'Read' }
        $first = Invoke-CalpermFirstCall -Mailbox $Mailbox -Tally $tally -Record $record -Mode $mode
        if (-not $first.Folder) { $record.outcome = 'no-calendar'; return }
        if ($first.Done) { $record.outcome = 'removed'; return }
        if ($null -eq $first.Current) { $record.outcome = 'absent'; return }
        $record.outcome = 'would-remove'
        $record.previous = @($first.Current)
        $null = $script:Cmdlet.ShouldProcess($first.Folder.Identity, ('Remove {0}' -f $script:MonitorUser))
    } catch {
        $record.outcome = 'failed'
        if ($script:Stopped) {
            $record.kind = 'interrupted'
            $record.message = 'The run was stopped before this mailbox was changed.'
            throw
        }
        $record.kind = Get-CalpermFailureKind (Get-CalpermErrorKind $_)
        $record.message = $_.Exception.Message
    } finally {
        $record.calls = $tally.calls
        $record.retries = $tally.retries
        Write-CalpermRecord $record
    }
}

# With a grant's journal: puts back exactly what was there before that grant. Where it added
# the entry, the entry is removed; where it raised the rights, the previous rights are set
# again. A calendar whose entry changed since the grant is left alone and reported skipped.
function Invoke-CalpermRestore {
    param([hashtable] $Entry)
    $record = New-CalpermMailboxRecord -Address $Entry.Mailbox
    $record.folderIdentity = $Entry.FolderIdentity
    $tally = @{ calls = 0; retries = 0 }
    try {
        $current = Get-CalpermMonitorRights -Identity $Entry.FolderIdentity -Tally $tally
        if ($null -eq $current) { $record.outcome = 'absent'; return }
        $record.previous = @($current)
        if (-not (Test-CalpermSameSet (ConvertTo-CalpermRightSet $current) (ConvertTo-CalpermRightSet $Entry.Granted))) {
            $record.outcome = 'skipped'
            $record.kind = 'changed'
            $record.rights = @($current)
            $record.message = ('The monitor now has {0}, not the {1} the grant set: left as it is.' -f ($current -join ','), ($Entry.Granted -join ','))
            return
        }
        if ($Entry.Uncertain) {
            # The grant stopped while adding without reading first: the entry may be older.
            $record.outcome = 'skipped'
            $record.kind = 'uncertain'
            $record.rights = @($current)
            $record.message = ('The grant stopped while adding {0}; the monitor has it, but may have had it before: left as it is. Remove it by hand if it was not there before.' -f ($current -join ','))
            return
        }
        if ($Entry.Action -eq 'remove') {
            if ($script:Cmdlet.ShouldProcess($Entry.FolderIdentity, ('Remove {0}' -f $script:MonitorUser))) {
                Confirm-CalpermIntent -Mailbox $Entry.Mailbox -Action 'remove' -FolderIdentity $Entry.FolderIdentity -Previous @($current)
                $null = Invoke-CalpermExchange -Command 'Remove-MailboxFolderPermission' -Parameters @{ Identity = $Entry.FolderIdentity; User = $script:MonitorUser; Confirm = $false } -Tally $tally
                $record.outcome = 'removed'
            } else { $record.outcome = 'would-remove' }
        } else {
            $record.rights = @($Entry.Previous)
            if ($script:Cmdlet.ShouldProcess($Entry.FolderIdentity, ('Restore {0} to {1}' -f $script:MonitorUser, ($Entry.Previous -join ',')))) {
                Confirm-CalpermIntent -Mailbox $Entry.Mailbox -Action 'set' -FolderIdentity $Entry.FolderIdentity -Previous @($current) -Rights @($Entry.Previous)
                $null = Invoke-CalpermExchange -Command 'Set-MailboxFolderPermission' -Parameters @{ Identity = $Entry.FolderIdentity; User = $script:MonitorUser; AccessRights = [string[]]$Entry.Previous } -Tally $tally
                $record.outcome = 'restored'
            } else { $record.outcome = 'would-restore' }
        }
    } catch {
        $record.outcome = 'failed'
        if ($script:Stopped) {
            $record.kind = 'interrupted'
            $record.message = 'The run was stopped before this mailbox was changed.'
            throw
        }
        $record.kind = Get-CalpermFailureKind (Get-CalpermErrorKind $_)
        $record.message = $_.Exception.Message
    } finally {
        $record.calls = $tally.calls
        $record.retries = $tally.retries
        Write-CalpermRecord $record
    }
}


# --- Run ------------------------------------------------------------------------------------
Write-CalpermRecord ([ordered]@{ type = 'start'; script = 'revoke'; monitor = $Monitor; accessRights = $null; whatIf = $script:WhatIfMode; total = (Get-CalpermExpectedTotal) })
try {
    Connect-CalpermExchangeOrStop
    Resolve-CalpermMonitor
    Get-CalpermTargetMailbox | ForEach-Object { Invoke-CalpermRevoke -Mailbox $_ }
} catch {
    Write-CalpermUnexpected $_
} finally {
    Disconnect-CalpermExchange
}
Complete-CalpermRun
