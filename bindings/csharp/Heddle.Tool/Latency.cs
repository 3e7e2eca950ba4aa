using System.Diagnostics;
using System.Text.Json;

namespace Heddle.Tool;

/// <summary>
/// Forward round-trip latency from C#: one 1024-float sample through a network that passes it on
/// (a disabled 1024x1024 dense layer), so the time is the transport's (C# -> libheddle -> engine and
/// back). Prints p50 / p99 of sequential calls and the rate of pipelined calls, like the C
/// baseline bindings/c/examples/latency.c.
/// </summary>
internal static class Latency
{
    public const string PassThrough = """{"layers":[{"type":"dense","input_height":1024,"output_height":1024,"disabled":true}]}""";

    public static int Run(string[] args)
    {
        var (o, pos) = Program.Parse(args, "json");
        if (pos.Count > 0) throw new UsageException($"unexpected argument '{pos[0]}'");
        int calls = o.TryGetValue("calls", out var c) ? int.Parse(c) : 20000;
        int window = o.TryGetValue("window", out var w) ? int.Parse(w) : 256;
        int warmup = o.TryGetValue("warmup", out var wu) ? int.Parse(wu) : 2000;
        if (calls <= 0 || window <= 0) throw new UsageException("--calls and --window must be positive");
        string[]? argv = Program.EngineArgv(o);
        using var engine = argv != null ? Engine.Start(argv) : Engine.Start(new EngineOptions { Runtime = o.GetValueOrDefault("runtime") });
        using var net = engine.CreateNetwork(PassThrough, 1);

        var x = new float[1024 * window];
        for (int i = 0; i < x.Length; i++) x[i] = (i % 1024) / 1024f;
        var y = new float[1024 * window];
        ReadOnlySpan<float> one = x.AsSpan(0, 1024);
        Span<float> oneOut = y.AsSpan(0, 1024);
        for (int i = 0; i < warmup; i++) net.Forward(one, oneOut);

        var lat = new double[calls];
        double tick = 1e6 / Stopwatch.Frequency;
        for (int i = 0; i < calls; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            net.Forward(one, oneOut);
            lat[i] = (Stopwatch.GetTimestamp() - t0) * tick;
        }
        if (!oneOut.SequenceEqual(one)) throw new InvalidOperationException("the pass-through network changed its input");
        Array.Sort(lat);

        int rounds = (calls + window - 1) / window;
        long p0 = Stopwatch.GetTimestamp();
        for (int r = 0; r < rounds; r++) net.ForwardPipelined(x, 1, window, y);
        double secs = (Stopwatch.GetTimestamp() - p0) / (double)Stopwatch.Frequency;
        double rate = rounds * (double)window / secs;
        double p50 = lat[calls / 2], p99 = lat[(int)((long)calls * 99 / 100)], mean = lat.Average();

        if (o.ContainsKey("json"))
        {
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["client"] = "csharp",
                ["runtime"] = engine.Info.Runtime,
                ["runtime_version"] = engine.Info.RuntimeVersion,
                ["calls"] = calls,
                ["window"] = window,
                ["p50_us"] = Math.Round(p50, 2),
                ["p99_us"] = Math.Round(p99, 2),
                ["mean_us"] = Math.Round(mean, 2),
                ["pipelined_calls_per_s"] = Math.Round(rate),
            }));
        }
        else
        {
            Console.WriteLine(engine.Info.Json);
            Console.WriteLine($"forward(1024 floats) from C#: p50 {p50:F1} us  p99 {p99:F1} us  mean {mean:F1} us  pipelined {rate:F0} calls/s (window {window})");
        }
        return 0;
    }
}
