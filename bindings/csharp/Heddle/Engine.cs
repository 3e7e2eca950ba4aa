using System.Runtime.InteropServices;
using System.Text.Json;
using Heddle.Interop;

namespace Heddle;

/// <summary>Options for starting or connecting to an engine.</summary>
public sealed class EngineOptions
{
    /// <summary>The engine command (argv; argv[0] looked up in PATH). Takes precedence over everything else.</summary>
    public IReadOnlyList<string>? Command { get; init; }

    /// <summary>With no command and no HEDDLE_ENGINE: "node" (default), "bun", "deno", or a path to one of them.</summary>
    public string? Runtime { get; init; }

    /// <summary>With no command and no HEDDLE_ENGINE: the engine bundle (heddle-engine.mjs); see <see cref="EngineLocator"/>.</summary>
    public string? EngineBundle { get; init; }

    /// <summary>A bound on each call: a call the engine does not answer in time fails with <see cref="HeddleTimeoutException"/> and the engine is closed. Null: wait as long as the engine lives.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Sent in the handshake (the engine logs it with --verbose).</summary>
    public string? ClientName { get; init; }
}

/// <summary>One backend of the engine, from the handshake.</summary>
public sealed record BackendInfo(string Name, bool Available, IReadOnlyList<string> Adapters, string Reason);

/// <summary>What the engine said in the handshake.</summary>
public sealed record EngineInfo(
    string AbiVersion,
    string EngineVersion,
    string Runtime,
    string RuntimeVersion,
    IReadOnlyList<BackendInfo> Backends,
    ulong MaxFrameBytes,
    ulong Connection,
    string Json)
{
    internal static EngineInfo Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var r = doc.RootElement;
        string S(JsonElement e, string k) => e.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
        var backends = new List<BackendInfo>();
        if (r.TryGetProperty("backends", out var bs) && bs.ValueKind == JsonValueKind.Array)
        {
            foreach (var b in bs.EnumerateArray())
            {
                var adapters = new List<string>();
                if (b.TryGetProperty("adapters", out var a) && a.ValueKind == JsonValueKind.Array)
                    foreach (var x in a.EnumerateArray()) adapters.Add(x.GetString() ?? "");
                backends.Add(new BackendInfo(S(b, "name"), b.TryGetProperty("available", out var av) && av.ValueKind == JsonValueKind.True, adapters, S(b, "reason")));
            }
        }
        ulong U(string k) => r.TryGetProperty(k, out var v) && v.TryGetUInt64(out ulong u) ? u : 0;
        return new EngineInfo(S(r, "abi_version"), S(r, "engine_version"), S(r, "runtime"), S(r, "runtime_version"), backends, U("max_frame_bytes"), U("connection"), json);
    }
}

/// <summary>
/// A connection to a Heddle engine process: started by this client (stdio; the default) or
/// reached through a unix socket (<c>heddle serve --socket PATH</c>). Networks made through it live
/// in the engine. Calls on one engine are serialized (it may be shared between threads). When the
/// engine process dies, the pending call and every later one fail at once with
/// <see cref="EngineExitedException"/>; start a new engine to go on. Dispose closes the connection
/// (a started engine exits).
/// </summary>
public sealed unsafe class Engine : IDisposable
{
    internal readonly EngineHandle Handle;

    // The engine whose train progress callback runs on this thread (calling it back would deadlock).
    [ThreadStatic] internal static Engine? CallbackEngine;

    private Engine(EngineHandle h, IReadOnlyList<string>? command, string? socket)
    {
        Handle = h;
        Command = command;
        SocketPath = socket;
        using var l = new Lease(h, nameof(Engine));
        nuint len = 0;
        Status s = Native.heddle_engine_info(l.Ptr, null, 0, &len);
        if (s != Status.BufferTooSmall && s != Status.Ok) NativeUtil.Throw(s);
        var buf = new byte[(int)len + 1];
        fixed (byte* p = buf) NativeUtil.Check(Native.heddle_engine_info(l.Ptr, p, (nuint)buf.Length, &len));
        Info = EngineInfo.Parse(System.Text.Encoding.UTF8.GetString(buf, 0, (int)len));
    }

    /// <summary>The command that started the engine; null for a socket connection.</summary>
    public IReadOnlyList<string>? Command { get; }

    /// <summary>The socket path of a connected engine; null for a started one.</summary>
    public string? SocketPath { get; }

    /// <summary>The handshake's answer: ABI and engine versions, runtime, backends.</summary>
    public EngineInfo Info { get; }

    /// <summary>The started engine's process id; -1 for a socket connection.</summary>
    public long ProcessId
    {
        get
        {
            using var l = new Lease(Handle, nameof(Engine));
            return Native.heddle_engine_pid(l.Ptr);
        }
    }

    /// <summary>True while the connection is usable (false once the engine exited or was closed).</summary>
    public bool IsAlive
    {
        get
        {
            if (Handle.IsClosed) return false;
            using var l = new Lease(Handle, nameof(Engine));
            return Native.heddle_engine_alive(l.Ptr) != 0;
        }
    }

    /// <summary>Starts an engine found as <see cref="EngineLocator"/> says and does the handshake.</summary>
    /// <exception cref="EngineStartFailedException">The command could not run or did not answer the handshake.</exception>
    public static Engine Start(EngineOptions? options = null) => Start(EngineLocator.Resolve(options), options);

    /// <summary>Starts the engine with this command (argv) and does the handshake.</summary>
    public static Engine Start(IReadOnlyList<string> command, EngineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Count == 0) throw new ArgumentException("the engine command is empty", nameof(command));
        var h = new EngineHandle();
        var argv = new nint[command.Count + 1];
        byte* name = NativeUtil.Utf8(options?.ClientName ?? DefaultClientName);
        try
        {
            for (int i = 0; i < command.Count; i++) argv[i] = (nint)NativeUtil.Utf8(command[i]);
            HeddleEngineOptions o = NativeOptions(options, name);
            nint e = 0;
            Status s;
            fixed (nint* a = argv) s = Native.heddle_engine_start((byte**)a, &o, &e);
            NativeUtil.Check(s);
            h.Set(e);
        }
        finally
        {
            foreach (nint p in argv) NativeUtil.Free((byte*)p);
            NativeUtil.Free(name);
        }
        return new Engine(h, command.ToArray(), null);
    }

    /// <summary>Connects to an engine serving a unix socket (<c>heddle serve --socket PATH</c>) and does the handshake.</summary>
    /// <exception cref="ConnectFailedException">Nothing serves that path.</exception>
    public static Engine Connect(string socketPath, EngineOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        var h = new EngineHandle();
        byte* name = NativeUtil.Utf8(options?.ClientName ?? DefaultClientName);
        try
        {
            HeddleEngineOptions o = NativeOptions(options, name);
            nint e = 0;
            NativeUtil.Check(Native.heddle_engine_connect(socketPath, &o, &e));
            h.Set(e);
        }
        finally
        {
            NativeUtil.Free(name);
        }
        return new Engine(h, null, socketPath);
    }

    private static string DefaultClientName => $"heddle-dotnet {typeof(Engine).Assembly.GetName().Version?.ToString(3)}";

    private static HeddleEngineOptions NativeOptions(EngineOptions? options, byte* clientName)
    {
        HeddleEngineOptions o;
        Native.heddle_engine_options_init(&o);
        if (options?.Timeout is TimeSpan t)
        {
            if (t <= TimeSpan.Zero || t.TotalMilliseconds > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(options), t, "Timeout must be positive and under 24 days");
            o.timeout_ms = (int)Math.Ceiling(t.TotalMilliseconds);
        }
        o.client_name = clientName;
        return o;
    }

    /// <summary>Builds a network from a config (Loom's JSON format); <paramref name="seed"/> initializes the weights.</summary>
    /// <exception cref="ConfigInvalidException">The config cannot be built (the message says where).</exception>
    public Network CreateNetwork(string configJson, ulong seed = 0)
    {
        ArgumentNullException.ThrowIfNull(configJson);
        EnsureNotInCallback();
        var nh = new NetworkHandle();
        using (var l = new Lease(Handle, nameof(Engine)))
        {
            nint n = 0;
            NativeUtil.Check(Native.heddle_network_create(l.Ptr, configJson, seed, &n));
            nh.Set(n);
        }
        return new Network(this, nh);
    }

    /// <summary>Builds a network from saved bytes (<see cref="Network.Save"/>); <paramref name="configJson"/> (safetensors only) overrides the stored config.</summary>
    public Network LoadNetwork(ReadOnlySpan<byte> data, NetworkFormat format = NetworkFormat.Safetensors, string? configJson = null)
    {
        EnsureNotInCallback();
        var nh = new NetworkHandle();
        using (var l = new Lease(Handle, nameof(Engine)))
        {
            nint n = 0;
            fixed (byte* p = data) NativeUtil.Check(Native.heddle_network_load(l.Ptr, format, p, (nuint)data.Length, configJson, &n));
            nh.Set(n);
        }
        return new Network(this, nh);
    }

    /// <summary>Chooses the backend ("cpu", "webgpu") for this connection's later calls.</summary>
    /// <exception cref="BackendUnavailableException">The backend cannot run here.</exception>
    public void SetBackend(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        EnsureNotInCallback();
        using var l = new Lease(Handle, nameof(Engine));
        NativeUtil.Check(Native.heddle_engine_set_backend(l.Ptr, name));
    }

    internal void EnsureNotInCallback()
    {
        if (ReferenceEquals(CallbackEngine, this))
            throw new InvalidOperationException("a train progress callback cannot call its own engine (the engine is busy with that training call)");
    }

    /// <summary>Closes the connection: a started engine exits (killed after 2 s). Networks of this engine then fail with <see cref="ClosedException"/>; dispose them as usual.</summary>
    public void Dispose() => Handle.Dispose();

    public override string ToString() =>
        $"Engine({Info.Runtime} {Info.RuntimeVersion}, engine {Info.EngineVersion}, ABI {Info.AbiVersion}{(SocketPath != null ? ", socket " + SocketPath : "")})";
}
