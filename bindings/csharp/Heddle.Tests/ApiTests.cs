namespace Heddle.Tests;

public class ApiTests
{
    private const string Dense = """{"layers":[{"type":"dense","input_height":4,"output_height":3,"activation":"tanh"}]}""";

    [Fact]
    public void HandshakeAndNetworkShapes()
    {
        using var engine = TestEnv.Start();
        Assert.Equal("node", engine.Info.Runtime);
        Assert.Equal(Abi.Version, engine.Info.AbiVersion);
        Assert.Contains(engine.Info.Backends, b => b.Name == "cpu" && b.Available);
        Assert.True(engine.Info.MaxFrameBytes > 0);
        Assert.True(engine.ProcessId > 0);
        Assert.True(engine.IsAlive);
        Assert.Equal(TestEnv.Command("node"), engine.Command);

        using var net = engine.CreateNetwork(Dense, seed: 1);
        Assert.Equal([4L], net.InputShape);
        Assert.Equal([3L], net.OutputShape);
        Assert.Equal(4, net.InputSize);
        Assert.Equal(3, net.OutputSize);
        Assert.Equal(15, net.ParameterCount);
        Assert.Equal(["layers.0.weight", "layers.0.bias"], net.Parameters.Select(p => p.Name));
        Assert.Equal([3L, 4L], net.Parameters[0].Shape);
        Assert.Equal(12, net.Parameters[1].Offset);
        Assert.Contains("dense", net.Describe());
    }

    [Fact]
    public void ForwardInAllItsForms()
    {
        using var engine = TestEnv.Start();
        using var net = engine.CreateNetwork(Dense, seed: 3);
        float[] x = TestEnv.TestValues(8, 2);
        float[] y = net.Forward(x);
        Assert.Equal(6, y.Length);
        var buf = new float[7];
        net.Forward(x.AsSpan(), buf);
        Assert.Equal(y, buf[..6]);
        Assert.Equal(y, net.Forward(Tensor.FromFloats(x, 2, 4)));
        Assert.Equal(y[..3], net.Forward(x.AsSpan(0, 4)));

        var outs = new float[5 * 6];
        var ins = Enumerable.Repeat(x, 5).SelectMany(a => a).ToArray();
        net.ForwardPipelined(ins, batch: 2, count: 5, outs);
        for (int i = 0; i < 5; i++) Assert.Equal(y, outs[(6 * i)..(6 * i + 6)]);
    }

    [Fact]
    public void ClientSideArgumentChecks()
    {
        using var engine = TestEnv.Start();
        using var net = engine.CreateNetwork(Dense);
        Assert.Throws<ArgumentException>(() => net.Forward(new float[5]));
        Assert.Throws<ArgumentException>(() => net.Forward(ReadOnlySpan<float>.Empty));
        Assert.Throws<ArgumentException>(() => net.Forward(new float[4], new float[2]));
        Assert.Throws<ArgumentException>(() => net.Grad(new float[4], new float[2]));
    }

    [Fact]
    public void GradientsOptimizerAndState()
    {
        using var engine = TestEnv.Start();
        using var net = engine.CreateNetwork(Dense, seed: 5);
        float[] x = TestEnv.TestValues(8, 3);
        var g = net.Grad(x, TestEnv.TestValues(6, 4));
        Assert.Equal(8, g.Input.Length);
        Assert.Equal(15, g.Weights.Length);
        Assert.Equal(g.Weights[12..], g.Of("layers.0.bias").ToArray());
        Assert.Empty(net.Grad(x, TestEnv.TestValues(6, 4), weightGrads: false).Weights);

        using var opt = net.CreateOptimizer("""{"type":"sgd","lr":0.1,"momentum":0.9}""");
        Assert.Empty(opt.GetState().Tensors);
        float[] before = net.GetWeights();
        Assert.Equal(1, opt.Step());
        float[] after = net.GetWeights();
        Assert.NotEqual(before, after);
        var st = opt.GetState();
        Assert.Equal(1, st.Step);
        Assert.Contains(st.Tensors, t => t.Name == "layers.0.weight.momentum_buffer" && t.Data.Length == 12 && t.Shape.SequenceEqual([3L, 4L]));
        Assert.Equal(2, opt.Step(0.5));

        var byName = net.GetWeightsByName();
        Assert.Equal(after.Length, byName.Values.Sum(v => v.Length));

        var lg = net.GradLoss(x, Tensor.FromInts([0, 2], 2), Losses.CrossEntropy);
        Assert.True(lg.Loss > 0);
        Assert.Equal(15, lg.Gradients.Weights.Length);
    }

    [Fact]
    public void TrainingReportsProgressAndKeepsOptimizerState()
    {
        using var engine = TestEnv.Start();
        using var net = engine.CreateNetwork(Dense, seed: 2);
        using var opt = net.CreateOptimizer("\"adamw\"");
        var inputs = Tensor.FromFloats(TestEnv.TestValues(24, 8), 6, 4);
        var targets = Tensor.FromFloats(TestEnv.TestValues(18, 9), 6, 3);
        var seen = new List<TrainProgress>();
        var r = net.Train(inputs, targets, new TrainOptions { Epochs = 2, BatchSize = 3, Optimizer = opt }, seen.Add);
        Assert.Equal(4, r.Steps);
        Assert.Equal(2, r.EpochLosses.Length);
        Assert.Equal([1L, 2, 3, 4], seen.Select(p => p.Step));
        Assert.All(seen, p => Assert.Equal(4, p.TotalSteps));
        Assert.Equal([0, 0, 1, 1], seen.Select(p => p.Epoch));
        Assert.Equal(4, opt.GetState().Step);
        net.Train(inputs, targets, new TrainOptions { Epochs = 1, BatchSize = 6, Optimizer = opt, ProgressEvery = 0 }, seen.Add);
        Assert.Equal(5, opt.GetState().Step);
        Assert.Equal(4, seen.Count);
    }

    [Fact]
    public void ProgressCallbackErrorsComeBackAfterTheCall()
    {
        using var engine = TestEnv.Start();
        using var net = engine.CreateNetwork(Dense);
        var inputs = Tensor.FromFloats(TestEnv.TestValues(8, 8), 2, 4);
        var targets = Tensor.FromFloats(TestEnv.TestValues(6, 9), 2, 3);
        int calls = 0;
        var e = Assert.Throws<InvalidDataException>(() => net.Train(inputs, targets, new TrainOptions { Epochs = 3, OptimizerSpec = "\"sgd\"" }, _ => { calls++; throw new InvalidDataException("from the callback"); }));
        Assert.Equal("from the callback", e.Message);
        Assert.Equal(1, calls);
        // Calling the same engine from the callback would deadlock: refused.
        Assert.Throws<InvalidOperationException>(() => net.Train(inputs, targets, new TrainOptions { OptimizerSpec = "\"sgd\"" }, _ => net.Forward(new float[4])));
        // The engine is fine afterwards.
        Assert.Equal(3, net.Forward(new float[4]).Length);
    }

    [Fact]
    public void SaveAndLoadBothFormats()
    {
        using var engine = TestEnv.Start();
        using var net = engine.CreateNetwork(Dense, seed: 9);
        float[] x = TestEnv.TestValues(4, 1);
        foreach (var f in new[] { NetworkFormat.Safetensors, NetworkFormat.Json })
        {
            byte[] b = net.Save(f);
            using var again = engine.LoadNetwork(b, f);
            Assert.Equal(net.Forward(x), again.Forward(x));
            Assert.Equal(b, again.Save(f));
        }
        Assert.Throws<FormatInvalidException>(() => engine.LoadNetwork(new byte[] { 1, 2, 3 }, NetworkFormat.Safetensors));
    }

    [Fact]
    public void IntegerIdsThroughForwardTensor()
    {
        using var engine = TestEnv.Start();
        using var net = engine.CreateNetwork("""{"layers":[{"type":"embedding","vocab_size":10,"embedding_dim":3,"seq_length":2}]}""", seed: 4);
        float[] y = net.Forward(new[] { 1, 2, 3, 9 });
        Assert.Equal(2 * net.OutputSize, y.Length);
        Assert.Equal(y, net.Forward(Tensor.FromInts([1, 2, 3, 9], 2, 2)));
        Assert.Equal(y, net.Forward(new[] { 1f, 2f, 3f, 9f }));
    }

    [Fact]
    public void TensorChecksItsShape()
    {
        Assert.Throws<ArgumentException>(() => Tensor.FromFloats([1f, 2f, 3f], 2, 2));
        Assert.Throws<ArgumentException>(() => Tensor.FromFloats([1f], -1));
        var t = Tensor.FromInts([1, 2, 3]);
        Assert.Equal([3L], t.Shape);
        Assert.Equal([1, 2, 3], t.ToInts());
        Assert.Equal(DType.I32, t.DType);
    }
}
