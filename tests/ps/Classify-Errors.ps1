<#
.SYNOPSIS
    Loads the error classifier of a rendered script (its Get-CalpermError* functions and the
    $script:Error* tables, exactly as rendered) and classifies error records built from a JSON
    list of cases, in every shape Exchange gives them. One JSON line per case and shape. Used by
    calperm's tests.
.PARAMETER Script
    A rendered script (grant.ps1).
.PARAMETER Cases
    A JSON file: [{ id, text, type (full name or null), locId }].
#>
param(
    [Parameter(Mandatory = $true)] [string] $Script,
    [Parameter(Mandatory = $true)] [string] $Cases
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 1.0

$tokens = $null
$parseErrors = $null
$ast = [System.Management.Automation.Language.Parser]::ParseFile($Script, [ref]$tokens, [ref]$parseErrors)
if ($parseErrors.Count -gt 0) { throw "The script does not parse: $($parseErrors[0].Message)" }
$parts = @($ast.EndBlock.Statements | Where-Object {
        ($_ -is [System.Management.Automation.Language.FunctionDefinitionAst] -and $_.Name -like 'Get-CalpermError*') -or
        ($_ -is [System.Management.Automation.Language.AssignmentStatementAst] -and $_.Left.Extent.Text -like '$script:Error*')
    })
if (@($parts | Where-Object { $_ -is [System.Management.Automation.Language.FunctionDefinitionAst] }).Count -lt 1) { throw 'No Get-CalpermError* function in the script.' }
foreach ($part in $parts) { . ([scriptblock]::Create($part.Extent.Text)) }

# An error record: Message, CategoryInfo.Reason (when given) and FullyQualifiedErrorId.
function New-Case {
    param([string] $Message, [string] $Reason, [string] $ErrorId)
    $record = New-Object System.Management.Automation.ErrorRecord ((New-Object System.Exception $Message), $ErrorId,
        [System.Management.Automation.ErrorCategory]::NotSpecified, $null)
    if ($Reason) { $record.CategoryInfo.Reason = $Reason }
    $record
}

$stamp = '[Server=AM9P191MB1860,RequestId=d0b134c5-0000-0000-0000-000000000000,TimeStamp=Fri, 02 Feb 2024 15:05:39 GMT]'
foreach ($case in (Get-Content -LiteralPath $Cases -Raw | ConvertFrom-Json)) {
    $text = [string]$case.text
    $shapes = [ordered]@{}
    if ($case.type) {
        $short = ([string]$case.type -split '\.')[-1]
        # Exchange Online V3: '<LocId>|<Type>|<text>'.
        $shapes['v3'] = New-Case ('{0}|{1}|{2}' -f $case.locId, $case.type, $text) $short ('{0},Write-ErrorMessage' -f $stamp)
        # Remote PowerShell (Exchange Server, Import-PSSession): the text, the type in CategoryInfo.
        $shapes['remote'] = New-Case $text $short ('{0} A4EADBBB,Microsoft.Exchange.Management.StoreTasks.AddMailboxFolderPermission' -f $stamp)
        # Only the error id names the type.
        $shapes['error-id'] = New-Case ('||' + $text) '' ('{0} [FailureCategory=Cmdlet-{1}] 1082ECE3,Microsoft.Exchange.Management.StoreTasks.AddMailboxFolderPermission' -f $stamp, $short)
    }
    # Live Exchange Online: '||<text>', no LocId, no type (field-notes §2); and the bare text.
    $shapes['typeless'] = New-Case ('||' + $text) '' ('{0},Write-ErrorMessage' -f $stamp)
    $shapes['text'] = New-Case $text '' 'NotSpecified'
    foreach ($shape in $shapes.Keys) {
        $kind = Get-CalpermErrorKind $shapes[$shape]
        [Console]::Out.WriteLine((ConvertTo-Json -Compress -InputObject ([ordered]@{ id = [string]$case.id; shape = $shape; kind = $kind })))
    }
}
