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
    $all = @($ast.FindAll({ $true }, $true))

    $commands = @($all | Where-Object { $_ -is [System.Management.Automation.Language.CommandAst] } |
        ForEach-Object { $name = $_.GetCommandName(); if ($name) { $name } else { '<dynamic>' } } | Sort-Object -Unique)
    $strings = @($all | Where-Object { $_ -is [System.Management.Automation.Language.StringConstantExpressionAst] } |
        ForEach-Object { $_.Value } | Sort-Object -Unique)

    $ps7 = @()
    foreach ($node in $all) {
        $type = $node.GetType().Name
        if ($type -eq 'TernaryExpressionAst') { $ps7 += 'ternary ? :' }
        if ($type -eq 'PipelineChainAst') { $ps7 += '&& / ||' }
        if ($node -is [System.Management.Automation.Language.BinaryExpressionAst] -and [string]$node.Operator -eq 'QuestionQuestion') { $ps7 += '??' }
        if ($node -is [System.Management.Automation.Language.AssignmentStatementAst] -and [string]$node.Operator -eq 'QuestionQuestionEquals') { $ps7 += '??=' }
        if ($node -is [System.Management.Automation.Language.MemberExpressionAst] -and $node.NullConditional) { $ps7 += '?. / ?[]' }
        if ($node -is [System.Management.Automation.Language.IndexExpressionAst] -and $node.NullConditional) { $ps7 += '?. / ?[]' }
        if ($node -is [System.Management.Automation.Language.CommandAst]) {
            $name = $node.GetCommandName()
            if ($name -in @('ForEach-Object', '%', 'foreach')) {
                foreach ($element in $node.CommandElements) {
                    if ($element -is [System.Management.Automation.Language.CommandParameterAst] -and 'Parallel'.StartsWith($element.ParameterName, [StringComparison]::OrdinalIgnoreCase) -and $element.ParameterName.Length -ge 2) {
                        $ps7 += 'ForEach-Object -Parallel'
                    }
                }
            }
        }
    }
    $bytes = [System.IO.File]::ReadAllBytes($file.FullName)
    $bom = $bytes.Length -ge 3 -and $bytes[0] -eq 0xEF -and $bytes[1] -eq 0xBB -and $bytes[2] -eq 0xBF

    $report = [ordered]@{
        file     = $file.Name
        errors   = @($errors | ForEach-Object { '{0}:{1}: {2}' -f $_.Extent.StartLineNumber, $_.Extent.StartColumnNumber, $_.Message })
        commands = $commands
        strings  = $strings
        ps7      = @($ps7 | Sort-Object -Unique)
        bom      = $bom
    }
    [Console]::Out.WriteLine((ConvertTo-Json -InputObject $report -Compress -Depth 4))
}
