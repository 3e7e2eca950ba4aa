namespace Heddle.Tests;

/// <summary>
/// Forward, grad, save, train, load, loss and set-weights through the engine give the TS core's
/// bits (the same SHA-256 as reference.ts computes in-process), with the engine on Node, Deno and Bun.
/// </summary>
public class BitsTests
{
    /// <summary>Kept in step with reference.ts CONFIG.</summary>
    public const string Config = """
        {"layers":[
          {"type":"dense","input_height":5,"output_height":7,"activation":"tanh"},
          {"type":"dense","input_height":7,"output_height":6,"activation":"relu"},
          {"type":"dense","input_height":6,"output_height":3}]}
        """;

    [Theory]
    [MemberData(nameof(TestEnv.RuntimeData), MemberType = typeof(TestEnv))]
    public void ResultsHaveTheCoresBits(string runtime)
    {
        var want = TestEnv.Reference();
        var got = new Dictionary<string, string>();
        using var engine = TestEnv.Start(runtime);
        Assert.Equal(runtime, engine.Info.Runtime);
        Assert.Equal(Abi.Version, engine.Info.AbiVersion);

        float[] x = TestEnv.TestValues(20, 11);
        float[] dy = TestEnv.TestValues(12, 12);
        using (var net = engine.CreateNetwork(Config, seed: 7))
        {
            got["forward"] = TestEnv.Sha256(net.Forward(x));
            var g = net.Grad(x, dy);
            got["input_grad"] = TestEnv.Sha256(g.Input);
            got["weight_grads"] = TestEnv.Sha256(g.Weights);
            got["save_safetensors"] = TestEnv.Sha256(net.Save(NetworkFormat.Safetensors));
            got["save_json"] = TestEnv.Sha256(net.Save(NetworkFormat.Json));
        }

        using (var t = engine.CreateNetwork(Config, seed: 7))
        {
            var steps = new List<float>();
            var r = t.Train(
                Tensor.FromFloats(TestEnv.TestValues(30, 13), 6, 5),
                Tensor.FromFloats(TestEnv.TestValues(18, 14), 6, 3),
                new TrainOptions { Epochs = 3, BatchSize = 4, Loss = Losses.Mse, OptimizerSpec = """{"type":"adamw","lr":0.01}""", Shuffle = true, Seed = 5 },
                p => steps.Add(p.Loss));
            Assert.Equal(3, r.EpochLosses.Length);
            Assert.Equal(6, r.Steps); // 3 epochs of 2 batches
            Assert.Equal(r.EpochLosses[^1], r.FinalLoss);
            got["train_epoch_losses"] = TestEnv.Sha256(r.EpochLosses);
            got["train_step_losses"] = TestEnv.Sha256(steps.ToArray());
            byte[] trained = t.Save();
            got["trained_safetensors"] = TestEnv.Sha256(trained);
            using var loaded = engine.LoadNetwork(trained, NetworkFormat.Safetensors);
            got["loaded_forward"] = TestEnv.Sha256(loaded.Forward(x));
        }

        using (var fresh = engine.CreateNetwork(Config, seed: 7))
        {
            var l = fresh.Loss(x, Tensor.FromFloats(TestEnv.TestValues(12, 15), 4, 3), Losses.Mse);
            got["loss"] = TestEnv.Sha256([l.Value]);
            got["loss_output_grad"] = TestEnv.Sha256(l.OutputGrad);
            fresh.SetWeights(fresh.Parameters.Select((p, i) => new KeyValuePair<string, float[]>(p.Name, TestEnv.TestValues((int)p.Count, (uint)(50 + i)))), complete: true);
            got["set_weights_forward"] = TestEnv.Sha256(fresh.Forward(x));
        }

        Assert.Equal(want.OrderBy(kv => kv.Key), got.OrderBy(kv => kv.Key));
    }
}
