using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.InteropServices.Marshalling;
using Heddle.Interop;

[assembly: DisableRuntimeMarshalling]

namespace Heddle.Interop;

/// <summary>Status checks, strings and library loading shared by the idiomatic layer.</summary>
internal static unsafe class NativeUtil
{
    /// <summary>Environment variable naming the libheddle.so to load instead of the bundled one.</summary>
    public const string LibraryEnv = "HEDDLE_LIBRARY";

#pragma warning disable CA2255 // a module initializer in a library is what sets the resolver before any call
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Init()
    {
        NativeLibrary.SetDllImportResolver(typeof(NativeUtil).Assembly, Resolve);
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Native.Library) return 0;
        string? env = Environment.GetEnvironmentVariable(LibraryEnv);
        if (!string.IsNullOrEmpty(env)) return NativeLibrary.Load(env);
        // Next to the assembly (project references, a flat publish); the default probing
        // covers runtimes/linux-x64/native of a NuGet package through the deps.json.
        string here = Path.Combine(AppContext.BaseDirectory, "libheddle.so");
        if (File.Exists(here) && NativeLibrary.TryLoad(here, out nint h)) return h;
        string? asmDir = Path.GetDirectoryName(assembly.Location);
        if (!string.IsNullOrEmpty(asmDir))
        {
            string near = Path.Combine(asmDir, "libheddle.so");
            if (File.Exists(near) && NativeLibrary.TryLoad(near, out h)) return h;
        }
        return 0; // default probing
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Check(Status s)
    {
        if (s != Status.Ok) Throw(s);
    }

    /// <summary>Throws the exception of a failed status with libheddle's message for this thread.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Throw(Status s)
    {
        string msg = Str(Native.heddle_last_error());
        if (msg.Length == 0) msg = $"{Abi.StatusName((int)s) ?? ((int)s).ToString()}: {Abi.StatusDoc((int)s) ?? "error"}";
        throw HeddleException.FromStatus((int)s, msg);
    }

    public static string Str(byte* p) => p == null ? "" : Marshal.PtrToStringUTF8((nint)p) ?? "";

    /// <summary>A NUL-terminated UTF-8 copy on the native heap (free with Free).</summary>
    public static byte* Utf8(string? s) => s == null ? null : Utf8StringMarshaller.ConvertToUnmanaged(s);

    public static void Free(byte* p)
    {
        if (p != null) Utf8StringMarshaller.Free(p);
    }

    public static long[] Shape(long* p, nuint rank)
    {
        var s = new long[(int)rank];
        for (int i = 0; i < s.Length; i++) s[i] = p[i];
        return s;
    }
}

internal sealed class EngineHandle : SafeHandle
{
    public EngineHandle() : base(0, true) { }
    public override bool IsInvalid => handle == 0;
    public void Set(nint h) => SetHandle(h);
    protected override bool ReleaseHandle()
    {
        Native.heddle_engine_close(handle);
        return true;
    }
}

internal sealed class NetworkHandle : SafeHandle
{
    public NetworkHandle() : base(0, true) { }
    public override bool IsInvalid => handle == 0;
    public void Set(nint h) => SetHandle(h);
    // Frees the network in the engine (when the engine still lives) and the C object.
    protected override bool ReleaseHandle()
    {
        Native.heddle_network_free(handle);
        return true;
    }
}

internal sealed class OptimizerHandle : SafeHandle
{
    public OptimizerHandle() : base(0, true) { }
    public override bool IsInvalid => handle == 0;
    public void Set(nint h) => SetHandle(h);
    protected override bool ReleaseHandle()
    {
        Native.heddle_optimizer_free(handle);
        return true;
    }
}

/// <summary>Keeps a SafeHandle from being released while a native call uses it.</summary>
internal ref struct Lease
{
    private readonly SafeHandle _h;
    private bool _added;
    public readonly nint Ptr;

    public Lease(SafeHandle h, string owner)
    {
        _h = h;
        _added = false;
        if (h.IsClosed) throw new ObjectDisposedException(owner, $"this {owner} was disposed");
        try
        {
            h.DangerousAddRef(ref _added);
        }
        catch (ObjectDisposedException)
        {
            throw new ObjectDisposedException(owner, $"this {owner} was disposed");
        }
        Ptr = h.DangerousGetHandle();
    }

    public void Dispose()
    {
        if (_added)
        {
            _h.DangerousRelease();
            _added = false;
        }
    }
}
