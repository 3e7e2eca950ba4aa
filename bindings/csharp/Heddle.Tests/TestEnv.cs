using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Heddle.Tests;

/// <summary>Where the repository, the engine bundle and the runtimes are, and shared helpers.</summary>
public static class TestEnv
{
    /// <summary>The repository root: three folders above this source file (bindings/csharp/Heddle.Tests).</summary>
    public static readonly string Repo = FindRepo();

    /// <summary>True when the test assembly was built inside the repository (the default ArtifactsPath), so discovery walks up to dist/.</summary>
    public static bool BuiltInRepo => AppContext.BaseDirectory.StartsWith(Repo + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    /// <summary>The engine bundle: HEDDLE_ENGINE_BUNDLE (npm test passes a fresh build), else dist/heddle-engine.mjs.</summary>
    public static readonly string Bundle = FindTestBundle();

    private static string FindTestBundle()
    {
        string? b = EngineLocator.FindBundle();
        if (b == null && File.Exists(Path.Combine(Repo, "dist", EngineLocator.BundleName))) b = Path.Combine(Repo, "dist", EngineLocator.BundleName);
        return b ?? throw new InvalidOperationException("no engine bundle: run npm run build (dist/heddle-engine.mjs) or set HEDDLE_ENGINE_BUNDLE");
    }

    public static readonly string[] Runtimes = ["node", "deno", "bun"];

    public static TheoryData<string> RuntimeData => new(Runtimes);

    /// <summary>A runtime's executable: node from PATH, bun and deno from the repository's node_modules/.bin (npm installs them).</summary>
    public static string RuntimePath(string runtime) => runtime == "node" ? "node" : Path.Combine(Repo, "node_modules", ".bin", runtime);

    /// <summary>The command running the bundle on a runtime.</summary>
    public static string[] Command(string runtime) => EngineLocator.RuntimeCommand(RuntimePath(runtime), Bundle);

    public static Engine Start(string runtime = "node", TimeSpan? timeout = null) =>
        Engine.Start(Command(runtime), new EngineOptions { Timeout = timeout, ClientName = "heddle-dotnet-tests" });

    // HEDDLE_REPO, else three folders above this source file, else a folder above the assembly.
    private static string FindRepo([System.Runtime.CompilerServices.CallerFilePath] string source = "")
    {
        static bool IsRepo(string d) => File.Exists(Path.Combine(d, "package.json")) && Directory.Exists(Path.Combine(d, "core")) && Directory.Exists(Path.Combine(d, "bindings", "csharp"));
        string? env = Environment.GetEnvironmentVariable("HEDDLE_REPO");
        if (!string.IsNullOrEmpty(env) && IsRepo(env)) return Path.GetFullPath(env);
        string? dir = Path.GetDirectoryName(source);
        if (!string.IsNullOrEmpty(dir))
        {
            string repo = Path.GetFullPath(Path.Combine(dir, "..", "..", ".."));
            if (IsRepo(repo)) return repo;
        }
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (IsRepo(d.FullName)) return d.FullName;
        throw new InvalidOperationException($"cannot find the Heddle repository (set HEDDLE_REPO): not above {source} nor {AppContext.BaseDirectory}");
    }

    /// <summary>xorshift32 values in [-1, 1), the same as abi/engine/testing.ts testValues.</summary>
    public static float[] TestValues(int n, uint seed)
    {
        uint s = seed == 0 ? 1 : seed;
        var r = new float[n];
        for (int i = 0; i < n; i++)
        {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            r[i] = (float)(s / 2147483648.0 - 1.0);
        }
        return r;
    }

    public static string Sha256(ReadOnlySpan<byte> b) => Convert.ToHexStringLower(SHA256.HashData(b));

    public static string Sha256(ReadOnlySpan<float> f) => Sha256(System.Runtime.InteropServices.MemoryMarshal.AsBytes(f));

    private static Dictionary<string, string>? s_reference;
    private static readonly object s_lock = new();

    /// <summary>The TS core's in-process digests (reference.ts run with vite-node), computed once per test run.</summary>
    public static IReadOnlyDictionary<string, string> Reference()
    {
        lock (s_lock)
        {
            if (s_reference != null) return s_reference;
            var psi = new ProcessStartInfo(Path.Combine(Repo, "node_modules", ".bin", "vite-node"))
            {
                WorkingDirectory = Repo,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            psi.ArgumentList.Add("bindings/csharp/Heddle.Tests/reference.ts");
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(120_000)) throw new TimeoutException("reference.ts did not finish in 120 s");
            if (p.ExitCode != 0) throw new InvalidOperationException($"reference.ts failed ({p.ExitCode}): {err.Result}");
            string line = stdout.Trim().Split('\n').Last();
            s_reference = JsonSerializer.Deserialize<Dictionary<string, string>>(line)!;
            return s_reference;
        }
    }
}
