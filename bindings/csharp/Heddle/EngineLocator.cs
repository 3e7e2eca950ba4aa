namespace Heddle;

/// <summary>
/// How <see cref="Engine.Start(EngineOptions?)"/> finds the engine process to run:
/// <list type="number">
/// <item>an explicit command (<see cref="EngineOptions.Command"/>);</item>
/// <item>else <c>$HEDDLE_ENGINE</c>, a command line split on whitespace (e.g. <c>bun /opt/heddle/heddle-engine.mjs</c>);</item>
/// <item>else the single-file engine bundle <c>heddle-engine.mjs</c> run with the runtime
/// (<see cref="EngineOptions.Runtime"/>: <c>node</c> by default, or <c>bun</c> / <c>deno</c>). The bundle is
/// <see cref="EngineOptions.EngineBundle"/>, else <c>$HEDDLE_ENGINE_BUNDLE</c>, else <c>heddle-engine.mjs</c> next to the
/// application or the Heddle assembly (the NuGet package puts it there), else <c>dist/heddle-engine.mjs</c> in a
/// folder above the assembly (a build inside the Heddle repository).</item>
/// </list>
/// A socket (<see cref="Engine.Connect"/>) needs none of this: the engine is already running.
/// </summary>
public static class EngineLocator
{
    /// <summary>The engine command line (split on whitespace).</summary>
    public const string CommandEnv = "HEDDLE_ENGINE";

    /// <summary>The engine bundle to run when no command is given.</summary>
    public const string BundleEnv = "HEDDLE_ENGINE_BUNDLE";

    /// <summary>The bundle's file name.</summary>
    public const string BundleName = "heddle-engine.mjs";

    /// <summary>The runtimes that run the bundle.</summary>
    public static readonly IReadOnlyList<string> Runtimes = ["node", "bun", "deno"];

    /// <summary>The command <see cref="Engine.Start(EngineOptions?)"/> would run with these options.</summary>
    /// <exception cref="EngineStartFailedException">No command, no HEDDLE_ENGINE and no bundle found.</exception>
    public static string[] Resolve(EngineOptions? options = null)
    {
        if (options?.Command is { Count: > 0 } cmd) return [.. cmd];
        string? env = Environment.GetEnvironmentVariable(CommandEnv);
        if (!string.IsNullOrWhiteSpace(env)) return env.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        string bundle = FindBundle(options?.EngineBundle)
            ?? throw new EngineStartFailedException(
                $"ENGINE_START_FAILED: no engine: pass EngineOptions.Command, set {CommandEnv}, or give the bundle ({BundleName}: EngineOptions.EngineBundle or {BundleEnv}); " +
                $"looked next to {AppContext.BaseDirectory} and for dist/{BundleName} above it");
        return RuntimeCommand(options?.Runtime ?? "node", bundle);
    }

    /// <summary>The engine bundle: the explicit path, else $HEDDLE_ENGINE_BUNDLE, else the places listed on <see cref="EngineLocator"/>; null if none exists.</summary>
    public static string? FindBundle(string? explicitPath = null)
    {
        if (!string.IsNullOrEmpty(explicitPath)) return Path.GetFullPath(explicitPath);
        string? env = Environment.GetEnvironmentVariable(BundleEnv);
        if (!string.IsNullOrEmpty(env)) return Path.GetFullPath(env);
        var dirs = new List<string> { AppContext.BaseDirectory };
        string? asm = Path.GetDirectoryName(typeof(EngineLocator).Assembly.Location);
        if (!string.IsNullOrEmpty(asm)) dirs.Add(asm);
        foreach (string d in dirs)
        {
            string p = Path.Combine(d, BundleName);
            if (File.Exists(p)) return Path.GetFullPath(p);
        }
        foreach (string d in dirs)
        {
            for (var dir = new DirectoryInfo(d); dir != null; dir = dir.Parent)
            {
                string p = Path.Combine(dir.FullName, "dist", BundleName);
                if (File.Exists(p)) return p;
            }
        }
        return null;
    }

    /// <summary>
    /// The command that runs a bundle on a runtime. <paramref name="runtime"/> is "node", "bun",
    /// "deno" (looked up in PATH, then in node_modules/.bin beside the bundle's dist folder) or a
    /// path to one of those executables.
    /// </summary>
    public static string[] RuntimeCommand(string runtime, string bundle)
    {
        string kind = RuntimeKind(runtime)
            ?? throw new ArgumentException($"runtime must be node, bun or deno (or a path to one), got '{runtime}'", nameof(runtime));
        string exe = runtime.Contains('/') ? Path.GetFullPath(runtime) : FindExecutable(runtime, bundle) ?? runtime;
        return kind switch
        {
            // --no-config / --no-lock: a deno.json or lock file in the working folder is not the engine's.
            "deno" => [exe, "run", "-A", "--quiet", "--no-config", "--no-lock", bundle],
            _ => [exe, bundle],
        };
    }

    /// <summary>"node", "bun" or "deno" for a runtime name or executable path; null otherwise.</summary>
    public static string? RuntimeKind(string runtime)
    {
        string name = Path.GetFileNameWithoutExtension(runtime).ToLowerInvariant();
        foreach (string k in Runtimes)
            if (name == k || name.StartsWith(k + "-") || name.StartsWith(k + "js")) return k;
        return null;
    }

    private static string? FindExecutable(string name, string bundle)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        // A bundle at <repo>/dist/heddle-engine.mjs: the repository's own runtimes (npm installs bun and deno).
        string? dist = Path.GetDirectoryName(bundle);
        string? repo = dist == null ? null : Path.GetDirectoryName(dist);
        if (repo != null)
        {
            string p = Path.Combine(repo, "node_modules", ".bin", name);
            if (File.Exists(p)) return p;
        }
        return null;
    }
}
