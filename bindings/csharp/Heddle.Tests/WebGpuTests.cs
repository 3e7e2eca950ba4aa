namespace Heddle.Tests;

/// <summary>
/// The webgpu backend through the engine: after SetBackend("webgpu"), Forward, Grad, GradLoss, Loss,
/// an optimizer step and Train give exactly the bits of the same calls after SetBackend("cpu"), with
/// the engine on Node, Deno and Bun. The adapter comes from the engine's environment, set here through
/// <c>/usr/bin/env</c> in the engine command (.NET's Environment does not reach a native child):
/// SwiftShader for Dawn (Node, Bun), lavapipe for Deno (DENO_WEBGPU_BACKEND=vulkan keeps it off OpenGL).
/// </summary>
public class WebGpuTests
{
    private const string SwiftShader = "/usr/lib/chromium/vk_swiftshader_icd.json";
    private const string Lavapipe = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json";

    private const string Config = """
        {"layers":[
          {"type":"dense","input_height":5,"output_height":7,"activation":"tanh"},
          {"type":"layer_norm","norm_size":7},
          {"type":"dense","input_height":7,"output_height":7,"activation":"gelu"},
          {"type":"residual"},
          {"type":"dense","input_height":7,"output_height":3}]}
        """;

    private static Engine StartWith(string runtime, params string[] env) =>
        Engine.Start(["/usr/bin/env", .. env, .. TestEnv.Command(runtime)], new EngineOptions { Timeout = TimeSpan.FromSeconds(300), ClientName = "heddle-dotnet-tests" });

    private static string[] GpuEnv(string runtime) =>
        runtime == "deno" ? [$"VK_ICD_FILENAMES={Lavapipe}", "DENO_WEBGPU_BACKEND=vulkan"] : [$"VK_ICD_FILENAMES={SwiftShader}"];

    /// <summary>Every compared result, by name, on fresh networks (the same seeds every time).</summary>
    private static Dictionary<string, string> Calls(Engine engine)
    {
        var got = new Dictionary<string, string>();
        float[] x = TestEnv.TestValues(20, 11);
        float[] dy = TestEnv.TestValues(12, 12);
        var target = Tensor.FromFloats(TestEnv.TestValues(12, 13), 4, 3);
        using (var net = engine.CreateNetwork(Config, seed: 7))
        {
            got["forward"] = TestEnv.Sha256(net.Forward(x));
            var g = net.Grad(x, dy);
            got["input_grad"] = TestEnv.Sha256(g.Input);
            got["weight_grads"] = TestEnv.Sha256(g.Weights);
            var gl = net.GradLoss(x, target, Losses.Mse);
            got["grad_loss"] = TestEnv.Sha256([gl.Loss]);
            got["grad_loss_input"] = TestEnv.Sha256(gl.Gradients.Input);
            got["grad_loss_weights"] = TestEnv.Sha256(gl.Gradients.Weights);
            var l = net.Loss(x, target, Losses.Mse);
            got["loss"] = TestEnv.Sha256([l.Value]);
            got["loss_output_grad"] = TestEnv.Sha256(l.OutputGrad);
            using var opt = net.CreateOptimizer("""{"type":"adamw","lr":0.01}""");
            opt.Step();
            // The host's new weights are the ones the next GPU pass uses.
            got["forward_after_step"] = TestEnv.Sha256(net.Forward(x));
            got["step_weights"] = TestEnv.Sha256(net.GetWeights());
            got["optimizer_state"] = TestEnv.Sha256(opt.GetState().Tensors.SelectMany(t => t.Data).ToArray());
        }
        using (var t = engine.CreateNetwork(Config, seed: 7))
        {
            var steps = new List<float>();
            var r = t.Train(
                Tensor.FromFloats(TestEnv.TestValues(55, 21), 11, 5),
                Tensor.FromFloats(TestEnv.TestValues(33, 22), 11, 3),
                new TrainOptions { Epochs = 2, BatchSize = 4, Loss = Losses.Mse, OptimizerSpec = """{"type":"adamw","lr":0.01}""", ClipNorm = 0.5, Shuffle = true, Seed = 5 },
                p => steps.Add(p.Loss));
            Assert.Equal(6, r.Steps);
            got["train_epoch_losses"] = TestEnv.Sha256(r.EpochLosses);
            got["train_step_losses"] = TestEnv.Sha256(steps.ToArray());
            got["trained_weights"] = TestEnv.Sha256(t.GetWeights());
            got["trained_forward"] = TestEnv.Sha256(t.Forward(x));
        }
        return got;
    }

    [Theory]
    [MemberData(nameof(TestEnv.RuntimeData), MemberType = typeof(TestEnv))]
    public void WebGpuGivesTheCpuBits(string runtime)
    {
        using var engine = StartWith(runtime, GpuEnv(runtime));
        Assert.Equal(runtime, engine.Info.Runtime);
        engine.SetBackend("cpu");
        var cpu = Calls(engine);
        engine.SetBackend("webgpu");
        var gpu = Calls(engine);
        Assert.Equal(cpu.OrderBy(kv => kv.Key), gpu.OrderBy(kv => kv.Key));
    }

    [Theory]
    [MemberData(nameof(TestEnv.RuntimeData), MemberType = typeof(TestEnv))]
    public void WithoutAnAdapterWebGpuIsUnavailableAndTheEngineStaysOnTheCpu(string runtime)
    {
        using var engine = StartWith(runtime, "VK_ICD_FILENAMES=/nonexistent/heddle_icd.json", "DENO_WEBGPU_BACKEND=vulkan");
        using var net = engine.CreateNetwork(Config, seed: 1);
        float[] x = TestEnv.TestValues(10, 41);
        string before = TestEnv.Sha256(net.Forward(x));
        var e = Assert.Throws<BackendUnavailableException>(() => engine.SetBackend("webgpu"));
        Assert.Contains("no adapter", e.Message);
        Assert.Throws<ArgumentInvalidException>(() => engine.SetBackend("abacus"));
        Assert.Equal(before, TestEnv.Sha256(net.Forward(x)));
    }
}
