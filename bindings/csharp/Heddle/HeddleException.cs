namespace Heddle;

/// <summary>
/// A failed Heddle call. Each ABI error code has its own subclass (generated from the schema:
/// <see cref="ConfigInvalidException"/>, <see cref="HandleStaleException"/>,
/// <see cref="EngineExitedException"/>, ...); a code this version does not know arrives as a plain
/// HeddleException with that number. <see cref="Exception.Message"/> is libheddle's message,
/// "CODE: what went wrong and where".
/// </summary>
public partial class HeddleException : Exception
{
    public HeddleException(int code, string message) : base(message)
    {
        Code = (Status)code;
    }

    /// <summary>The status code (an <see cref="Status"/> value, or a number this version does not know).</summary>
    public Status Code { get; }

    /// <summary>The ABI name of the code ("CONFIG_INVALID"), or "ERROR_&lt;n&gt;" for an unknown number.</summary>
    public string CodeName => Abi.StatusName((int)Code) ?? $"ERROR_{(int)Code}";

    /// <summary>True for codes raised by the client library (600 and up: engine exited, timeout, ...), false for errors the engine answered.</summary>
    public bool IsClientSide => (int)Code >= 600;
}
