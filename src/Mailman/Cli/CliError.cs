namespace Mailman.Cli;

/// <summary>sysexits.h codes: what Postfix acts on when it pipes into <c>inject</c>.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Usage = 64;
    public const int DataError = 65;
    public const int NoInput = 66;
    public const int NoUser = 67;
    public const int Software = 70;
    public const int CantCreate = 73;
    public const int TempFail = 75;
    public const int NoPerm = 77;
    public const int Config = 78;
}

/// <summary>A user-facing failure: one line on stderr, a specific exit code, no stack trace.</summary>
public sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
