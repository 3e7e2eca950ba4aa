using System.Text.Json;

namespace Heddle.Tool;

public static class Program
{
    private const string Usage = """
        usage:
          heddle-dotnet conformance --engine '<engine argv as JSON>' [--backend cpu] REQUEST.json REPORT.json
          heddle-dotnet latency [--calls N] [--window W] [--runtime node|bun|deno] [--engine '<engine argv as JSON>'] [--json]
        """;

    public static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            Console.Error.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        try
        {
            return args[0] switch
            {
                "conformance" => Conformance.Run(args[1..]),
                "latency" => Latency.Run(args[1..]),
                _ => Fail($"unknown command '{args[0]}'\n{Usage}"),
            };
        }
        catch (Exception e) when (e is UsageException or FormatException)
        {
            return Fail($"{e.Message}\n{Usage}");
        }
        catch (HeddleException e)
        {
            Console.Error.WriteLine($"heddle-dotnet: {e.Message}");
            return 1;
        }
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"heddle-dotnet: {message}");
        return 2;
    }

    /// <summary>--name value options and positional arguments.</summary>
    internal static (Dictionary<string, string> Options, List<string> Positional) Parse(string[] args, params string[] flags)
    {
        var opts = new Dictionary<string, string>();
        var pos = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (!a.StartsWith("--")) { pos.Add(a); continue; }
            string name = a[2..];
            if (flags.Contains(name)) { opts[name] = "true"; continue; }
            if (i + 1 >= args.Length) throw new UsageException($"{a} needs a value");
            opts[name] = args[++i];
        }
        return (opts, pos);
    }

    internal static string[]? EngineArgv(Dictionary<string, string> opts)
    {
        if (!opts.TryGetValue("engine", out string? json)) return null;
        string[]? argv;
        try { argv = JsonSerializer.Deserialize<string[]>(json); }
        catch (JsonException e) { throw new UsageException($"--engine: not a JSON array of strings ({e.Message})"); }
        if (argv is not { Length: > 0 }) throw new UsageException("--engine: an empty command");
        return argv;
    }
}

internal sealed class UsageException(string message) : Exception(message);
