using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Heddle.Tool;

/// <summary>
/// The C# wrapper's conformance client (docs/conformance.md, "Wrapper way in"): reads materialized
/// vectors, runs every op through the Heddle library (libheddle, the engine process on the
/// column's runtime) and writes a report with each op's output arrays, which the host digests
/// and compares with the goldens.
///
/// Op -> calls: forward -> Network.Forward(Tensor); grad -> Network.Grad (input grad, then every
/// parameter's grad in parameter order); loss -> Network.Loss; train -> CreateOptimizer, Train with
/// it and progress every step (step losses and lrs), GetWeights, Optimizer.GetState;
/// roundtrip -> Save, Engine.LoadNetwork, Save, Forward. Replacement weights -> SetWeights.
/// An engine that dies is restarted for the next vector.
/// </summary>
internal static class Conformance
{
    private sealed record WireArray(string Name, string DType, long[] Shape, byte[] Data);

    private sealed class OpFailure(string code, string message) : Exception(message)
    {
        public string Code { get; } = code;
    }

    public static int Run(string[] args)
    {
        var (o, pos) = Program.Parse(args);
        if (pos.Count != 2) throw new UsageException("conformance needs REQUEST.json and REPORT.json");
        string[] argv = Program.EngineArgv(o) ?? throw new UsageException("conformance needs --engine");
        string backend = o.GetValueOrDefault("backend") ?? "cpu";
        var request = JsonNode.Parse(File.ReadAllText(pos[0]))!.AsObject();
        var vectors = request["vectors"]!.AsArray();

        Engine? engine = null;
        string? unavailable = null;
        Engine Live()
        {
            if (engine is { IsAlive: true }) return engine;
            engine?.Dispose();
            engine = Engine.Start(argv, new EngineOptions { ClientName = "heddle-dotnet conformance" });
            if (backend != "cpu") engine.SetBackend(backend);
            return engine;
        }

        using var report = new MemoryStream();
        using (var w = new Utf8JsonWriter(report))
        {
            try
            {
                Live();
            }
            catch (BackendUnavailableException e)
            {
                unavailable = e.Message;
            }
            w.WriteStartObject();
            w.WriteString("runtime", engine!.Info.Runtime);
            w.WriteString("version", engine.Info.RuntimeVersion);
            w.WriteString("backend", backend);
            if (unavailable != null) w.WriteString("unavailable", unavailable);
            w.WriteStartArray("results");
            if (unavailable == null)
            {
                foreach (var v in vectors)
                {
                    var vec = v!.AsObject();
                    long t0 = Stopwatch.GetTimestamp();
                    var ops = RunVector(Live(), vec);
                    double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                    w.WriteStartObject();
                    w.WriteString("id", (string)vec["id"]!);
                    w.WriteNumber("ms", Math.Round(ms, 3));
                    w.WriteStartArray("ops");
                    foreach (var (key, arrays, fail) in ops)
                    {
                        w.WriteStartObject();
                        w.WriteString("key", key);
                        if (fail != null)
                        {
                            w.WriteString("error", fail.Value.Code);
                            w.WriteString("message", fail.Value.Message);
                        }
                        else
                        {
                            w.WriteStartArray("arrays");
                            foreach (var a in arrays!)
                            {
                                w.WriteStartObject();
                                w.WriteString("name", a.Name);
                                w.WriteString("dtype", a.DType);
                                w.WriteStartArray("shape");
                                foreach (long d in a.Shape) w.WriteNumberValue(d);
                                w.WriteEndArray();
                                w.WriteBase64String("data", a.Data);
                                w.WriteEndObject();
                            }
                            w.WriteEndArray();
                        }
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        engine?.Dispose();
        File.WriteAllBytes(pos[1], report.ToArray());
        return 0;
    }

    private static List<(string Key, List<WireArray>? Arrays, (string Code, string Message)? Fail)> RunVector(Engine engine, JsonObject vec)
    {
        var ops = vec["ops"]!.AsArray().Select(x => x!.AsObject()).ToList();
        var results = new List<(string, List<WireArray>?, (string, string)?)>();
        Network net;
        try
        {
            net = engine.CreateNetwork(vec["config"]!.ToJsonString(), (ulong)(long)vec["seed"]!);
            if (vec["weights"] is JsonObject weights)
            {
                try
                {
                    net.SetWeights(weights.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, ReadTensor(kv.Value!.AsObject()))));
                }
                catch
                {
                    net.Dispose();
                    throw;
                }
            }
        }
        catch (Exception e)
        {
            var f = Failure(e);
            foreach (var op in ops) results.Add(((string)op["key"]!, null, (f.Code, $"building the network: {f.Message}")));
            return results;
        }
        using (net)
        {
            foreach (var op in ops)
            {
                string key = (string)op["key"]!;
                try
                {
                    results.Add((key, RunOp(engine, net, op, (ulong)(long)vec["seed"]!), null));
                }
                catch (Exception e)
                {
                    results.Add((key, null, Failure(e)));
                }
            }
        }
        return results;
    }

    private static (string Code, string Message) Failure(Exception e) => e switch
    {
        HeddleException h => (h.CodeName, h.Message),
        OpFailure f => (f.Code, f.Message),
        _ => ("EXCEPTION", e.ToString()),
    };

    private static List<WireArray> RunOp(Engine engine, Network net, JsonObject op, ulong vectorSeed)
    {
        var spec = op["spec"]!.AsObject();
        string name = (string)spec["op"]!;
        switch (name)
        {
            case "forward":
            {
                var x = Need(op, "input");
                return [F32("output", OutShape(net, x), net.Forward(x))];
            }
            case "grad":
            {
                var x = F32Input(Need(op, "input"), "input");
                var dy = F32Input(Need(op, "grad_output"), "grad_output");
                var g = net.Grad(x.AsSpan(), dy.AsSpan());
                var arrays = new List<WireArray> { F32("input.grad", x.ShapeArray(), g.Input) };
                foreach (var p in net.Parameters) arrays.Add(F32($"{p.Name}.grad", [.. p.Shape], g.Of(p.Name).ToArray()));
                return arrays;
            }
            case "loss":
            {
                var x = F32Input(Need(op, "input"), "input");
                string loss = (string?)spec["loss"] ?? throw new OpFailure("CONFIG_INVALID", "the loss op names no loss");
                var r = net.Loss(x.AsSpan(), Need(op, "target"), loss);
                return [F32("loss", [], [r.Value]), F32("grad", OutShape(net, x), r.OutputGrad)];
            }
            case "train":
            {
                string optSpec = spec["optimizer"]?.ToJsonString() ?? """{"type":"sgd","lr":0.05}""";
                using var opt = net.CreateOptimizer(optSpec);
                var losses = new List<float>();
                var lrs = new List<double>();
                var r = net.Train(Need(op, "inputs"), Need(op, "targets"), new TrainOptions
                {
                    Epochs = (int?)spec["epochs"] ?? 2,
                    BatchSize = (int?)spec["batch_size"] ?? 2,
                    Loss = (string?)spec["loss"] ?? "mse",
                    Optimizer = opt,
                    Schedule = spec["schedule"]?.ToJsonString(),
                    ClipNorm = (double?)spec["clip_norm"],
                    Shuffle = (bool?)spec["shuffle"] ?? false,
                    Seed = (ulong?)(long?)spec["seed"] ?? vectorSeed,
                    ProgressEvery = 1,
                }, p =>
                {
                    losses.Add(p.Loss);
                    lrs.Add(p.LearningRate);
                });
                var arrays = new List<WireArray>
                {
                    F32("epoch_losses", [r.EpochLosses.Length], r.EpochLosses),
                    F32("step_losses", [losses.Count], losses.ToArray()),
                    new("step_lrs", "f64", [lrs.Count], MemoryMarshal.AsBytes(lrs.ToArray().AsSpan()).ToArray()),
                };
                float[] weights = net.GetWeights();
                foreach (var p in net.Parameters) arrays.Add(F32(p.Name, [.. p.Shape], weights.AsSpan((int)p.Offset, (int)p.Count).ToArray()));
                var st = opt.GetState();
                arrays.Add(new("optimizer.step", "i32", [], BitConverter.GetBytes(checked((int)st.Step))));
                foreach (var t in st.Tensors) arrays.Add(F32($"optimizer.{t.Name}", [.. t.Shape], t.Data));
                return arrays;
            }
            case "roundtrip":
            {
                string fmt = (string?)spec["format"] ?? "";
                var format = fmt switch
                {
                    "safetensors" => NetworkFormat.Safetensors,
                    "json" => NetworkFormat.Json,
                    _ => throw new OpFailure("CONFIG_INVALID", $"roundtrip format '{fmt}' is not json or safetensors"),
                };
                var x = Need(op, "input");
                byte[] file = net.Save(format);
                using var again = engine.LoadNetwork(file, format);
                byte[] resaved = again.Save(format);
                float[] y = again.Forward(x);
                return [new("file", "u8", [file.Length], file), new("file.resaved", "u8", [resaved.Length], resaved), F32("output", OutShape(again, x), y)];
            }
            default:
                throw new OpFailure("EXCEPTION", $"unknown op '{name}'");
        }
    }

    private static long[] ShapeArray(this Tensor t) => [.. t.Shape];

    private static long[] OutShape(Network net, Tensor x) => [x.Shape.Count > 0 ? x.Shape[0] : 1, .. net.OutputShape];

    private static WireArray F32(string name, long[] shape, float[] data) =>
        new(name, "f32", shape, MemoryMarshal.AsBytes(data.AsSpan()).ToArray());

    private static Tensor Need(JsonObject op, string field) =>
        op[field] is JsonObject t ? ReadTensor(t) : throw new OpFailure("EXCEPTION", $"the materialized op has no {field} (the host could not generate it)");

    private static Tensor F32Input(Tensor t, string what) =>
        t.DType == DType.F32 ? t : throw new OpFailure("EXCEPTION", $"{what} is {t.DType}: grad and loss take f32 inputs through libheddle");

    private static ReadOnlySpan<float> AsSpan(this Tensor t) => MemoryMarshal.Cast<byte, float>(t.Bytes);

    private static Tensor ReadTensor(JsonObject w)
    {
        string dtype = (string)w["dtype"]!;
        long[] shape = w["shape"]!.AsArray().Select(d => (long)d!).ToArray();
        byte[] data = Convert.FromBase64String((string)w["data"]!);
        return dtype switch
        {
            "f32" => Tensor.FromBytes(DType.F32, data, shape),
            "i32" => Tensor.FromBytes(DType.I32, data, shape),
            _ => throw new OpFailure("EXCEPTION", $"wire tensor dtype '{dtype}' is not f32 or i32"),
        };
    }
}
