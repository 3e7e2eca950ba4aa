using System.Diagnostics;

namespace Heddle.Tests;

/// <summary>Error codes arrive as their exception types; the engine keeps serving after each.</summary>
public class ErrorTests
{
    private const string Dense = """{"layers":[{"type":"dense","input_height":4,"output_height":3}]}""";

    [Fact]
    public void InvalidConfigIsConfigInvalid()
    {
        using var engine = TestEnv.Start();
        var e = Assert.Throws<ConfigInvalidException>(() => engine.CreateNetwork("""{"layers":[{"type":"dense","input_height":4}]}"""));
        Assert.Equal(Status.ConfigInvalid, e.Code);
        Assert.Equal("CONFIG_INVALID", e.CodeName);
        Assert.False(e.IsClientSide);
        Assert.StartsWith("CONFIG_INVALID: ", e.Message);
        Assert.Contains("output_height", e.Message);
        Assert.IsAssignableFrom<HeddleException>(Assert.ThrowsAny<HeddleException>(() => engine.CreateNetwork("not json")));
        Assert.Throws<ConfigInvalidException>(() => engine.CreateNetwork("""{"layers":[{"type":"no_such_layer"}]}"""));
        // The connection still serves.
        using var net = engine.CreateNetwork(Dense);
        Assert.Equal(3, net.Forward(new float[4]).Length);
    }

    [Fact]
    public void EngineErrorsMapToTheirTypes()
    {
        using var engine = TestEnv.Start();
        using var net = engine.CreateNetwork(Dense);
        Assert.Throws<InputInvalidException>(() => net.Forward(new[] { float.NaN, 0, 0, 0 }));
        // SetBackend("webgpu") depends on the adapters the engine finds: WebGpuTests.
        Assert.Throws<ArgumentInvalidException>(() => engine.SetBackend("abacus"));
        engine.SetBackend("cpu");
        Assert.Throws<UnsupportedException>(() => net.MorphDtype(DType.F16));
        net.MorphDtype(DType.F32);
        Assert.Throws<ShapeMismatchException>(() => net.Forward(Tensor.FromFloats(new float[10], 2, 5)));
        Assert.Throws<WeightsInvalidException>(() => net.SetWeights([new KeyValuePair<string, float[]>("nope", [1f])]));
        Assert.Throws<WeightsInvalidException>(() => net.SetWeights([new KeyValuePair<string, Tensor>("layers.0.bias", Tensor.FromFloats(new float[2]))]));
        Assert.Throws<ConfigInvalidException>(() => net.CreateOptimizer("""{"type":"nope"}"""));
        Assert.ThrowsAny<HeddleException>(() => net.Loss(new float[4], Tensor.FromFloats(new float[3], 1, 3), "hinge"));
        Assert.Equal(3, net.Forward(new float[4]).Length);
    }

    [Fact]
    public void UnknownCodesAreStillErrors()
    {
        var e = HeddleException.FromStatus(599, "ERROR_599: from a newer engine");
        Assert.Equal(typeof(HeddleException), e.GetType());
        Assert.Equal("ERROR_599", e.CodeName);
        Assert.IsType<EngineExitedException>(HeddleException.FromStatus((int)Status.EngineExited, "x"));
        Assert.IsType<HeddleTimeoutException>(HeddleException.FromStatus((int)Status.Timeout, "x"));
        Assert.True(HeddleException.FromStatus((int)Status.Closed, "x").IsClientSide);
    }

    [Fact]
    public void UseAfterDispose()
    {
        var engine = TestEnv.Start();
        var net = engine.CreateNetwork(Dense);
        var net2 = engine.CreateNetwork(Dense);
        var opt = net2.CreateOptimizer("\"sgd\"");
        net.Dispose();
        net.Dispose(); // twice is fine
        Assert.True(net.IsDisposed);
        var e = Assert.Throws<ObjectDisposedException>(() => net.Forward(new float[4]));
        Assert.Contains("Network", e.Message);
        Assert.Throws<ObjectDisposedException>(() => net.Save());
        Assert.Throws<ObjectDisposedException>(() => net.CreateOptimizer("\"sgd\""));
        // The engine freed it: its handle is stale, the other network is fine.
        Assert.Equal(3, net2.Forward(new float[4]).Length);

        engine.Dispose();
        engine.Dispose();
        Assert.False(engine.IsAlive);
        Assert.Throws<ObjectDisposedException>(() => engine.CreateNetwork(Dense));
        Assert.Throws<ObjectDisposedException>(() => engine.SetBackend("cpu"));
        // A network of a closed engine: libheddle answers CLOSED.
        var c = Assert.Throws<ClosedException>(() => net2.Forward(new float[4]));
        Assert.True(c.IsClientSide);
        Assert.Throws<ClosedException>(() => opt.Step());
        opt.Dispose();
        net2.Dispose();
    }

    [Fact]
    public void KilledEngineFailsFastAndANewOneWorks()
    {
        using (var engine = TestEnv.Start())
        {
            using var net = engine.CreateNetwork(Dense);
            Process.GetProcessById((int)engine.ProcessId).Kill();
            var sw = Stopwatch.StartNew();
            var e = Assert.Throws<EngineExitedException>(() => net.Forward(new float[4]));
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"took {sw.Elapsed}");
            Assert.Contains("start a new engine", e.Message);
            Assert.False(engine.IsAlive);
            // Every later call fails the same way, at once.
            Assert.Throws<EngineExitedException>(() => engine.CreateNetwork(Dense));
        }
        using var again = TestEnv.Start();
        using var n2 = again.CreateNetwork(Dense);
        Assert.Equal(3, n2.Forward(new float[4]).Length);
    }

    [Fact]
    public void EngineKilledDuringTrainingFailsThePendingCall()
    {
        using var engine = TestEnv.Start();
        using var net = engine.CreateNetwork("""{"layers":[{"type":"dense","input_height":64,"output_height":64,"activation":"tanh"}]}""");
        var inputs = Tensor.FromFloats(TestEnv.TestValues(64 * 64, 3), 64, 64);
        var targets = Tensor.FromFloats(TestEnv.TestValues(64 * 64, 4), 64, 64);
        long pid = engine.ProcessId;
        var sw = new Stopwatch();
        var e = Assert.Throws<EngineExitedException>(() => net.Train(inputs, targets, new TrainOptions { Epochs = 100000, BatchSize = 1, OptimizerSpec = "\"sgd\"" }, p =>
        {
            if (p.Step == 3)
            {
                Process.GetProcessById((int)pid).Kill();
                sw.Start();
            }
        }));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"took {sw.Elapsed}");
        Assert.Contains("killed", e.Message);
    }

    [Fact]
    public void StartFailuresAndTimeouts()
    {
        var e = Assert.Throws<EngineStartFailedException>(() => Engine.Start(["/nonexistent/heddle-engine"]));
        Assert.Contains("nonexistent", e.Message);
        // Something that runs but never answers the handshake.
        Assert.Throws<EngineStartFailedException>(() => Engine.Start(["true"]));
        var sw = Stopwatch.StartNew();
        Assert.Throws<HeddleTimeoutException>(() => Engine.Start(["sleep", "30"], new EngineOptions { Timeout = TimeSpan.FromMilliseconds(300) }));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
        Assert.Throws<ArgumentException>(() => Engine.Start(Array.Empty<string>()));
        Assert.Throws<ConnectFailedException>(() => Engine.Connect("/tmp/heddle-no-such-socket-" + Guid.NewGuid().ToString("N")[..8]));
    }
}
