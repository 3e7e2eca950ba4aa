using System.Diagnostics;

namespace Heddle.Tests;

/// <summary>Engine discovery, the runtimes and the socket transport.</summary>
public class EngineTests
{
    private const string Dense = """{"layers":[{"type":"dense","input_height":4,"output_height":3}]}""";

    [Theory]
    [MemberData(nameof(TestEnv.RuntimeData), MemberType = typeof(TestEnv))]
    public void RunsOnEveryRuntime(string runtime)
    {
        using var engine = Engine.Start(new EngineOptions { Runtime = TestEnv.RuntimePath(runtime), EngineBundle = TestEnv.Bundle });
        Assert.Equal(runtime, engine.Info.Runtime);
        Assert.Equal(EngineLocator.RuntimeKind(engine.Command![0]), runtime);
        using var net = engine.CreateNetwork(Dense, 1);
        Assert.Equal(3, net.Forward(new float[4]).Length);
    }

    [Fact]
    public void DiscoveryOrder()
    {
        string? saved = Environment.GetEnvironmentVariable(EngineLocator.CommandEnv);
        string? savedBundle = Environment.GetEnvironmentVariable(EngineLocator.BundleEnv);
        try
        {
            Environment.SetEnvironmentVariable(EngineLocator.CommandEnv, null);
            Environment.SetEnvironmentVariable(EngineLocator.BundleEnv, null);
            // The bundle: found above the assembly (dist/heddle-engine.mjs of this repository).
            if (TestEnv.BuiltInRepo) Assert.Equal(Path.Combine(TestEnv.Repo, "dist", "heddle-engine.mjs"), EngineLocator.FindBundle());
            Assert.Equal("/x/e.mjs", EngineLocator.FindBundle("/x/e.mjs"));
            string[] cmd = EngineLocator.Resolve(new EngineOptions { EngineBundle = "/b/heddle-engine.mjs" });
            Assert.Equal("node", Path.GetFileName(cmd[0]));
            Assert.Equal("/b/heddle-engine.mjs", cmd[^1]);
            cmd = EngineLocator.Resolve(new EngineOptions { Runtime = "deno", EngineBundle = "/b/heddle-engine.mjs" });
            Assert.Equal(["run", "-A"], cmd[1..3]);
            Assert.Throws<ArgumentException>(() => EngineLocator.Resolve(new EngineOptions { Runtime = "python", EngineBundle = "/b/heddle-engine.mjs" }));
            // HEDDLE_ENGINE_BUNDLE, then HEDDLE_ENGINE (a command line) win over what is found.
            Environment.SetEnvironmentVariable(EngineLocator.BundleEnv, "/env/heddle-engine.mjs");
            Assert.Equal("/env/heddle-engine.mjs", EngineLocator.Resolve()[^1]);
            Environment.SetEnvironmentVariable(EngineLocator.CommandEnv, $"  {TestEnv.Command("bun")[0]}   {TestEnv.Bundle} ");
            Assert.Equal([TestEnv.Command("bun")[0], TestEnv.Bundle], EngineLocator.Resolve(new EngineOptions { Runtime = "deno" }));
            using (var e = Engine.Start())
                Assert.Equal("bun", e.Info.Runtime);
            // An explicit command wins over everything.
            Assert.Equal(["a", "b"], EngineLocator.Resolve(new EngineOptions { Command = ["a", "b"] }));
        }
        finally
        {
            Environment.SetEnvironmentVariable(EngineLocator.CommandEnv, saved);
            Environment.SetEnvironmentVariable(EngineLocator.BundleEnv, savedBundle);
        }
    }

    [Fact]
    public void SocketTransportServesSeveralClients()
    {
        string dir = Directory.CreateTempSubdirectory("heddle-cs-").FullName;
        string sock = Path.Combine(dir, "engine.sock");
        var cmd = TestEnv.Command("node");
        var psi = new ProcessStartInfo(cmd[0]) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in cmd.Skip(1)) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("--socket");
        psi.ArgumentList.Add(sock);
        using var server = Process.Start(psi)!;
        try
        {
            var sw = Stopwatch.StartNew();
            while (!File.Exists(sock) && sw.Elapsed < TimeSpan.FromSeconds(20)) Thread.Sleep(20);
            Assert.True(File.Exists(sock), "the engine did not create its socket");
            using var a = Engine.Connect(sock);
            using var b = Engine.Connect(sock);
            Assert.Equal(sock, a.SocketPath);
            Assert.Equal(-1, a.ProcessId);
            Assert.NotEqual(a.Info.Connection, b.Info.Connection);
            using var na = a.CreateNetwork(Dense, 3);
            using var nb = b.CreateNetwork(Dense, 3);
            float[] x = TestEnv.TestValues(4, 5);
            Assert.Equal(na.Forward(x), nb.Forward(x));
        }
        finally
        {
            server.Kill();
            server.WaitForExit(5000);
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void EnginesOnSeveralThreads()
    {
        using var engine = TestEnv.Start();
        using var net = engine.CreateNetwork(Dense, 8);
        float[] x = TestEnv.TestValues(4, 6);
        float[] want = net.Forward(x);
        Parallel.For(0, 4, _ =>
        {
            for (int i = 0; i < 50; i++) Assert.Equal(want, net.Forward(x));
        });
    }
}
