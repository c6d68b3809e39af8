<#
.SYNOPSIS
    Parses rendered scripts with PowerShell's own parser and reports, per file, as one JSON line:
    parse errors, the commands invoked, every constant string, the PowerShell-7-only constructs
    found, and whether the file starts with the UTF-8 BOM. Used by calperm's tests.
#>
param([Parameter(Mandatory = $true)] [string] $Directory)
$ErrorActionPreference = 'Stop'

foreach ($file in Get-ChildItem -LiteralPath $Directory -Filter '*.ps1' | Sort-Object Name) {
    $tokens = $null
    $errors = $null
    $ast = [System.Management.Automation.Language.Parser]::ParseFile($file.FullName, [ref]$tokens, [ref]$errors)
    $commands = New-Object 'System.Collections.Generic.SortedSet[string]' ([StringComparer]::Ordinal)
    $strings = New-Object 'System.Collections.Generic.SortedSet[string]' ([StringComparer]::Ordinal)
    $ps7 = New-Object 'System.Collections.Generic.SortedSet[string]' ([StringComparer]::Ordinal)
    # One pass over the tree; pipelines per node would make this minutes slower.
    foreach ($node in $ast.FindAll({ $true }, $true)) {
        if ($node -is [System.Management.Automation.Language.StringConstantExpressionAst]) { [void]$strings.Add($node.Value); continue }
        if ($node -is [System.Management.Automation.Language.CommandAst]) {
            $name = $node.GetCommandName()
            if ($name) { [void]$commands.Add($name) } else { [void]$commands.Add('<dynamic>') }
            if ($name -eq 'ForEach-Object' -or $name -eq '%' -or $name -eq 'foreach') {
                foreach ($element in $node.CommandElements) {
                    if ($element -is [System.Management.Automation.Language.CommandParameterAst] -and $element.ParameterName.Length -ge 2 -and 'Parallel'.StartsWith($element.ParameterName, [StringComparison]::OrdinalIgnoreCase)) {
                        [void]$ps7.Add('ForEach-Object -Parallel')
                    }
                }
            }
            continue
        }
        $type = $node.GetType().Name
        if ($type -eq 'TernaryExpressionAst') { [void]$ps7.Add('ternary ? :') }
        elseif ($type -eq 'PipelineChainAst') { [void]$ps7.Add('&& / ||') }
        elseif ($type -eq 'BinaryExpressionAst' -and [string]$node.Operator -eq 'QuestionQuestion') { [void]$ps7.Add('??') }
        elseif ($type -eq 'AssignmentStatementAst' -and [string]$node.Operator -eq 'QuestionQuestionEquals') { [void]$ps7.Add('??=') }
        elseif (($type -eq 'MemberExpressionAst' -or $type -eq 'InvokeMemberExpressionAst' -or $type -eq 'IndexExpressionAst') -and $node.NullConditional) { [void]$ps7.Add('?. / ?[]') }
    }
    $bytes = [System.IO.File]::ReadAllBytes($file.FullName)
    $bom = $bytes.Length -ge 3 -and $bytes[0] -eq 0xEF -and $bytes[1] -eq 0xBB -and $bytes[2] -eq 0xBF

    $report = [ordered]@{
        file     = $file.Name
        errors   = @($errors | ForEach-Object { '{0}:{1}: {2}' -f $_.Extent.StartLineNumber, $_.Extent.StartColumnNumber, $_.Message })
        commands = @($commands)
        strings  = @($strings)
        ps7      = @($ps7)
        bom      = $bom
    }
    [Console]::Out.WriteLine((ConvertTo-Json -InputObject $report -Compress -Depth 4))
}
