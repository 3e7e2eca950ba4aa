using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;
using Heddle.Interop;

namespace Heddle;

/// <summary>
/// A network living in an engine, reached through a handle this object owns: Dispose frees it
/// in the engine (and its optimizers). Inputs are f32 samples in row-major order: a span of
/// <c>batch * InputSize</c> floats is a batch of <c>batch</c> samples of shape <see cref="InputShape"/>.
/// Results are the TS core's exact bits.
/// </summary>
public sealed unsafe class Network : IDisposable
{
    private readonly NetworkHandle _h;

    internal Network(Engine engine, NetworkHandle h)
    {
        Engine = engine;
        _h = h;
        nint n = h.DangerousGetHandle();
        InputShape = NativeUtil.Shape(Native.heddle_network_input_shape(n), Native.heddle_network_input_rank(n));
        OutputShape = NativeUtil.Shape(Native.heddle_network_output_shape(n), Native.heddle_network_output_rank(n));
        InputSize = checked((int)Native.heddle_network_input_size(n));
        OutputSize = checked((int)Native.heddle_network_output_size(n));
        ParameterCount = checked((long)Native.heddle_network_parameter_count(n));
        var ps = new ParameterInfo[(int)Native.heddle_network_parameter_tensors(n)];
        long off = 0;
        for (int i = 0; i < ps.Length; i++)
        {
            long[] shape = NativeUtil.Shape(Native.heddle_network_parameter_shape(n, (nuint)i), Native.heddle_network_parameter_rank(n, (nuint)i));
            long count = 1;
            foreach (long d in shape) count *= d;
            ps[i] = new ParameterInfo(NativeUtil.Str(Native.heddle_network_parameter_name(n, (nuint)i)), shape, off, count);
            off += count;
        }
        Parameters = ps;
    }

    /// <summary>The engine the network lives in.</summary>
    public Engine Engine { get; }

    /// <summary>One sample's input shape (without the batch dimension).</summary>
    public IReadOnlyList<long> InputShape { get; }

    /// <summary>One sample's output shape (without the batch dimension).</summary>
    public IReadOnlyList<long> OutputShape { get; }

    /// <summary>Elements of one sample's input.</summary>
    public int InputSize { get; }

    /// <summary>Elements of one sample's output.</summary>
    public int OutputSize { get; }

    /// <summary>Total number of weights (the length of <see cref="GetWeights"/>).</summary>
    public long ParameterCount { get; }

    /// <summary>The parameter tensors in parameter order.</summary>
    public IReadOnlyList<ParameterInfo> Parameters { get; }

    private Lease Use()
    {
        Engine.EnsureNotInCallback();
        return new Lease(_h, nameof(Network));
    }

    private int BatchOf(int length, string what)
    {
        if (InputSize <= 0 || length == 0 || length % InputSize != 0)
            throw new ArgumentException($"{what} holds {length} floats: not a whole number of samples of {InputSize} ([{string.Join(", ", InputShape)}])", what);
        return length / InputSize;
    }

    // ------------------------------------------------------------------ inference

    /// <summary>Inference on a batch of f32 samples (<c>input.Length / InputSize</c> of them); returns <c>batch * OutputSize</c> floats.</summary>
    public float[] Forward(ReadOnlySpan<float> input)
    {
        int batch = BatchOf(input.Length, nameof(input));
        var output = new float[checked(batch * OutputSize)];
        ForwardCore(input, batch, output);
        return output;
    }

    /// <summary>Inference into a caller's buffer of at least <c>batch * OutputSize</c> floats.</summary>
    public void Forward(ReadOnlySpan<float> input, Span<float> output)
    {
        int batch = BatchOf(input.Length, nameof(input));
        if (output.Length < (long)batch * OutputSize)
            throw new ArgumentException($"output holds {output.Length} floats, {(long)batch * OutputSize} are needed", nameof(output));
        ForwardCore(input, batch, output);
    }

    private void ForwardCore(ReadOnlySpan<float> input, int batch, Span<float> output)
    {
        using var l = Use();
        fixed (float* x = input)
        fixed (float* y = output)
            NativeUtil.Check(Native.heddle_network_forward(l.Ptr, x, (nuint)batch, y, (nuint)output.Length));
    }

    /// <summary>Inference on any input tensor: f32 samples, or integer ids (i32/i64) for networks that read them. Returns f32 outputs.</summary>
    public float[] Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        long batch = input.Shape.Count > 0 ? input.Shape[0] : 1;
        var output = new float[checked((int)(batch * OutputSize))];
        using var l = Use();
        fixed (byte* d = input.Data)
        fixed (long* s = input.ShapeArray)
        fixed (float* y = output)
        {
            var t = new HeddleTensor { dtype = input.DType, rank = (nuint)input.Shape.Count, shape = s, data = d, nbytes = (nuint)input.Data.Length };
            nuint count = 0;
            NativeUtil.Check(Native.heddle_network_forward_tensor(l.Ptr, &t, y, (nuint)output.Length, &count));
            if ((int)count != output.Length) return output.AsSpan(0, (int)count).ToArray();
        }
        return output;
    }

    /// <summary>Inference on integer ids (i32), <c>ids.Length / InputSize</c> samples.</summary>
    public float[] Forward(ReadOnlySpan<int> ids)
    {
        int batch = BatchOf(ids.Length, nameof(ids));
        return Forward(Tensor.FromInts(ids, [batch, .. InputShape]));
    }

    /// <summary>
    /// <paramref name="count"/> Forward calls of <paramref name="batch"/> samples each, sent back to
    /// back without waiting (pipelined): <paramref name="inputs"/> holds <c>count * batch * InputSize</c>
    /// floats, <paramref name="outputs"/> gets <c>count * batch * OutputSize</c>. All are answered; the first error is thrown.
    /// </summary>
    public void ForwardPipelined(ReadOnlySpan<float> inputs, int batch, int count, Span<float> outputs)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (inputs.Length != (long)count * batch * InputSize)
            throw new ArgumentException($"inputs holds {inputs.Length} floats, count * batch * InputSize = {(long)count * batch * InputSize}", nameof(inputs));
        if (outputs.Length < (long)count * batch * OutputSize)
            throw new ArgumentException($"outputs holds {outputs.Length} floats, {(long)count * batch * OutputSize} are needed", nameof(outputs));
        if (count == 0) return;
        using var l = Use();
        fixed (float* x = inputs)
        fixed (float* y = outputs)
            NativeUtil.Check(Native.heddle_network_forward_pipelined(l.Ptr, x, (nuint)batch, (nuint)count, y, (nuint)outputs.Length));
    }

    // ------------------------------------------------------------------ gradients and losses

    /// <summary>
    /// Backward pass: dLoss/dInput and (unless <paramref name="weightGrads"/> is false) every
    /// parameter's gradient, from <paramref name="gradOutput"/> (dLoss/dOutput, <c>batch * OutputSize</c>
    /// floats). The engine keeps the weight gradients for <see cref="Optimizer.Step"/>.
    /// </summary>
    public Gradients Grad(ReadOnlySpan<float> input, ReadOnlySpan<float> gradOutput, bool weightGrads = true)
    {
        int batch = BatchOf(input.Length, nameof(input));
        if (gradOutput.Length != (long)batch * OutputSize)
            throw new ArgumentException($"gradOutput holds {gradOutput.Length} floats, batch * OutputSize = {(long)batch * OutputSize}", nameof(gradOutput));
        var dx = new float[input.Length];
        float[]? dw = weightGrads ? new float[ParameterCount] : null;
        using var l = Use();
        fixed (float* x = input)
        fixed (float* dy = gradOutput)
        fixed (float* pdx = dx)
        fixed (float* pdw = dw)
            NativeUtil.Check(Native.heddle_network_grad(l.Ptr, x, (nuint)batch, dy, pdx, (nuint)dx.Length, pdw, (nuint)(dw?.Length ?? 0)));
        return new Gradients(Parameters, dx, dw);
    }

    /// <summary>Backward pass of a loss (<see cref="Losses"/>) of the output against <paramref name="target"/>.</summary>
    public LossGradients GradLoss(ReadOnlySpan<float> input, Tensor target, string loss = Losses.Mse, bool weightGrads = true)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(loss);
        int batch = BatchOf(input.Length, nameof(input));
        var dx = new float[input.Length];
        float[]? dw = weightGrads ? new float[ParameterCount] : null;
        float value = 0;
        using var l = Use();
        fixed (float* x = input)
        fixed (float* pdx = dx)
        fixed (float* pdw = dw)
        fixed (byte* td = target.Data)
        fixed (long* ts = target.ShapeArray)
        {
            var t = new HeddleTensor { dtype = target.DType, rank = (nuint)target.Shape.Count, shape = ts, data = td, nbytes = (nuint)target.Data.Length };
            NativeUtil.Check(Native.heddle_network_grad_loss(l.Ptr, x, (nuint)batch, &t, loss, &value, pdx, (nuint)dx.Length, pdw, (nuint)(dw?.Length ?? 0)));
        }
        return new LossGradients(value, new Gradients(Parameters, dx, dw));
    }

    /// <summary>A loss (<see cref="Losses"/>) of the network's output against <paramref name="target"/>, and dLoss/dOutput. Changes nothing.</summary>
    public LossResult Loss(ReadOnlySpan<float> input, Tensor target, string loss = Losses.Mse)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(loss);
        int batch = BatchOf(input.Length, nameof(input));
        var dy = new float[checked(batch * OutputSize)];
        float value = 0;
        using var l = Use();
        fixed (float* x = input)
        fixed (float* pdy = dy)
        fixed (byte* td = target.Data)
        fixed (long* ts = target.ShapeArray)
        {
            var t = new HeddleTensor { dtype = target.DType, rank = (nuint)target.Shape.Count, shape = ts, data = td, nbytes = (nuint)target.Data.Length };
            NativeUtil.Check(Native.heddle_network_loss(l.Ptr, x, (nuint)batch, &t, loss, &value, pdy, (nuint)dy.Length));
        }
        return new LossResult(value, dy);
    }

    // ------------------------------------------------------------------ training

    private sealed class ProgressState(Action<TrainProgress> callback)
    {
        public readonly Action<TrainProgress> Callback = callback;
        public ExceptionDispatchInfo? Error;
    }

    [UnmanagedCallersOnly]
    private static void OnProgress(HeddleTrainProgress* p, void* user)
    {
        var state = (ProgressState)GCHandle.FromIntPtr((nint)user).Target!;
        if (state.Error != null) return;
        try
        {
            state.Callback(new TrainProgress((int)p->epoch, (long)p->step, (long)p->steps_per_epoch, (long)p->total_steps, p->loss, p->lr));
        }
        catch (Exception e)
        {
            // Never across the native frames: kept, and thrown when the call returns.
            state.Error = ExceptionDispatchInfo.Capture(e);
        }
    }

    /// <summary>
    /// Trains on <paramref name="inputs"/> ([N, ...InputShape], f32) and <paramref name="targets"/>
    /// (mse: f32 shaped like the outputs; cross_entropy: class indices or probabilities).
    /// <paramref name="onProgress"/> runs on this thread for each progress report; it must not call
    /// this engine (InvalidOperationException), and an exception it throws is rethrown once the
    /// training call has finished.
    /// </summary>
    public TrainResult Train(Tensor inputs, Tensor targets, TrainOptions? options = null, Action<TrainProgress>? onProgress = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(targets);
        options ??= new TrainOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(options.Epochs, "options.Epochs");
        ArgumentOutOfRangeException.ThrowIfNegative(options.BatchSize, "options.BatchSize");
        ArgumentOutOfRangeException.ThrowIfNegative(options.ProgressEvery, "options.ProgressEvery");
        if (options.Optimizer != null && !ReferenceEquals(options.Optimizer.Network, this))
            throw new ArgumentException("the optimizer belongs to another network", nameof(options));
        var epochLosses = new float[Math.Max(1, options.Epochs)];
        var state = onProgress == null ? null : new ProgressState(onProgress);
        GCHandle gch = state == null ? default : GCHandle.Alloc(state);
        byte* loss = NativeUtil.Utf8(options.Loss);
        byte* opt = NativeUtil.Utf8(options.OptimizerSpec);
        byte* sched = NativeUtil.Utf8(options.Schedule);
        HeddleTrainResult r = default;
        Lease optLease = default;
        try
        {
            using var l = Use();
            HeddleTrainOptions o;
            Native.heddle_train_options_init(&o);
            o.epochs = (uint)options.Epochs;
            o.batch_size = (uint)options.BatchSize;
            o.loss = loss;
            o.optimizer_json = opt;
            o.schedule_json = sched;
            o.clip_norm = options.ClipNorm ?? 0;
            o.shuffle = options.Shuffle ? 1 : 0;
            o.seed = options.Seed;
            o.progress_every = (uint)options.ProgressEvery;
            if (options.Optimizer != null)
            {
                optLease = options.Optimizer.Use();
                o.optimizer = optLease.Ptr;
            }
            Status s;
            fixed (float* el = epochLosses)
            fixed (byte* xd = inputs.Data)
            fixed (long* xs = inputs.ShapeArray)
            fixed (byte* yd = targets.Data)
            fixed (long* ys = targets.ShapeArray)
            {
                o.epoch_losses = el;
                o.epoch_losses_cap = (nuint)epochLosses.Length;
                var x = new HeddleTensor { dtype = inputs.DType, rank = (nuint)inputs.Shape.Count, shape = xs, data = xd, nbytes = (nuint)inputs.Data.Length };
                var y = new HeddleTensor { dtype = targets.DType, rank = (nuint)targets.Shape.Count, shape = ys, data = yd, nbytes = (nuint)targets.Data.Length };
                var prev = Engine.CallbackEngine;
                Engine.CallbackEngine = state == null ? prev : Engine;
                try
                {
                    delegate* unmanaged<HeddleTrainProgress*, void*, void> cb = state == null ? null : &OnProgress;
                    s = Native.heddle_network_train(l.Ptr, &x, &y, &o, cb, state == null ? null : (void*)GCHandle.ToIntPtr(gch), &r);
                }
                finally
                {
                    Engine.CallbackEngine = prev;
                }
            }
            NativeUtil.Check(s);
        }
        finally
        {
            optLease.Dispose();
            NativeUtil.Free(loss);
            NativeUtil.Free(opt);
            NativeUtil.Free(sched);
            if (gch.IsAllocated) gch.Free();
        }
        state?.Error?.Throw();
        return new TrainResult(r.final_loss, (long)r.steps, epochLosses.AsSpan(0, (int)Math.Min(r.epochs, (uint)epochLosses.Length)).ToArray());
    }

    // ------------------------------------------------------------------ weights and files

    /// <summary>Every weight, concatenated in parameter order (<see cref="Parameters"/> gives each one's offset).</summary>
    public float[] GetWeights()
    {
        var w = new float[ParameterCount];
        using var l = Use();
        fixed (float* p = w) NativeUtil.Check(Native.heddle_network_get_weights(l.Ptr, p, (nuint)w.Length));
        return w;
    }

    /// <summary>Every weight by parameter name.</summary>
    public IReadOnlyDictionary<string, float[]> GetWeightsByName()
    {
        float[] all = GetWeights();
        var d = new Dictionary<string, float[]>();
        foreach (var p in Parameters) d[p.Name] = all.AsSpan((int)p.Offset, (int)p.Count).ToArray();
        return d;
    }

    /// <summary>Replaces weights by name (f32, each parameter's exact shape, finite). All or nothing; with <paramref name="complete"/> every parameter must be given.</summary>
    public void SetWeights(IEnumerable<KeyValuePair<string, Tensor>> weights, bool complete = false)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var list = weights.ToList();
        var names = new nint[list.Count];
        var tensors = new HeddleTensor[list.Count];
        var pins = new List<GCHandle>(list.Count * 2);
        try
        {
            for (int i = 0; i < list.Count; i++)
            {
                var (name, t) = (list[i].Key, list[i].Value ?? throw new ArgumentException($"weights[{list[i].Key}] is null", nameof(weights)));
                names[i] = (nint)NativeUtil.Utf8(name);
                var pd = GCHandle.Alloc(t.Data, GCHandleType.Pinned);
                pins.Add(pd);
                var ps = GCHandle.Alloc(t.ShapeArray, GCHandleType.Pinned);
                pins.Add(ps);
                tensors[i] = new HeddleTensor { dtype = t.DType, rank = (nuint)t.Shape.Count, shape = (long*)ps.AddrOfPinnedObject(), data = (void*)pd.AddrOfPinnedObject(), nbytes = (nuint)t.Data.Length };
            }
            using var l = Use();
            fixed (nint* n = names)
            fixed (HeddleTensor* t = tensors)
                NativeUtil.Check(Native.heddle_network_set_weights(l.Ptr, (byte**)n, t, (nuint)list.Count, complete ? 1 : 0));
        }
        finally
        {
            foreach (var p in pins) p.Free();
            foreach (nint n in names) NativeUtil.Free((byte*)n);
        }
    }

    /// <summary>Replaces weights by name; each array takes its parameter's shape.</summary>
    public void SetWeights(IEnumerable<KeyValuePair<string, float[]>> weights, bool complete = false)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var shapes = Parameters.ToDictionary(p => p.Name, p => p.Shape);
        SetWeights(weights.Select(kv =>
        {
            if (!shapes.TryGetValue(kv.Key, out var shape)) throw new WeightsInvalidException($"WEIGHTS_INVALID: no parameter named '{kv.Key}' (the network has {string.Join(", ", shapes.Keys)})");
            return new KeyValuePair<string, Tensor>(kv.Key, Tensor.FromFloats(kv.Value, [.. shape]));
        }), complete);
    }

    /// <summary>Serializes config and weights (<see cref="NetworkFormat.Safetensors"/> or <see cref="NetworkFormat.Json"/>).</summary>
    public byte[] Save(NetworkFormat format = NetworkFormat.Safetensors)
    {
        using var l = Use();
        nuint len = 0;
        Status s = Native.heddle_network_save(l.Ptr, format, null, 0, &len);
        if (s == Status.Ok && len == 0) return [];
        if (s != Status.BufferTooSmall) NativeUtil.Check(s);
        var buf = new byte[(int)len];
        // libheddle kept the fetched bytes: this second call does not ask the engine again.
        fixed (byte* p = buf) NativeUtil.Check(Native.heddle_network_save(l.Ptr, format, p, (nuint)buf.Length, &len));
        return buf;
    }

    /// <summary>The blueprint as JSON (what <c>heddle info --json</c> prints).</summary>
    public string Describe()
    {
        using var l = Use();
        nuint len = 0;
        Status s = Native.heddle_network_describe(l.Ptr, null, 0, &len);
        if (s != Status.BufferTooSmall) NativeUtil.Check(s);
        var buf = new byte[(int)len + 1];
        fixed (byte* p = buf) NativeUtil.Check(Native.heddle_network_describe(l.Ptr, p, (nuint)buf.Length, &len));
        return Encoding.UTF8.GetString(buf, 0, (int)len);
    }

    /// <summary>Converts the weights' dtype; only <see cref="DType.F32"/> (a no-op) until the dtype work lands (else <see cref="UnsupportedException"/>).</summary>
    public void MorphDtype(DType dtype)
    {
        using var l = Use();
        NativeUtil.Check(Native.heddle_network_morph_dtype(l.Ptr, dtype));
    }

    /// <summary>An optimizer over this network's parameters, e.g. <c>{"type":"sgd","lr":0.1,"momentum":0.9}</c> or <c>"adamw"</c>.</summary>
    public Optimizer CreateOptimizer(string specJson)
    {
        ArgumentNullException.ThrowIfNull(specJson);
        var oh = new OptimizerHandle();
        using (var l = Use())
        {
            nint o = 0;
            NativeUtil.Check(Native.heddle_optimizer_create(l.Ptr, specJson, &o));
            oh.Set(o);
        }
        return new Optimizer(this, oh);
    }

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => _h.IsClosed;

    /// <summary>Frees the network in the engine (and its optimizers). Safe to call twice; later calls throw ObjectDisposedException.</summary>
    public void Dispose() => _h.Dispose();

    public override string ToString() => $"Network([{string.Join(", ", InputShape)}] -> [{string.Join(", ", OutputShape)}], {ParameterCount} weights)";
}

/// <summary>An optimizer of one network (its state lives in the engine). Dispose frees it; disposing the network frees it too.</summary>
public sealed unsafe class Optimizer : IDisposable
{
    private readonly OptimizerHandle _h;

    internal Optimizer(Network network, OptimizerHandle h)
    {
        Network = network;
        _h = h;
    }

    /// <summary>The network whose parameters it updates.</summary>
    public Network Network { get; }

    internal Lease Use()
    {
        Network.Engine.EnsureNotInCallback();
        return new Lease(_h, nameof(Optimizer));
    }

    /// <summary>One update from the network's weight gradients (the last <see cref="Network.Grad"/>); <paramref name="learningRate"/> null: the spec's. Returns the steps so far.</summary>
    public long Step(double? learningRate = null)
    {
        using var l = Use();
        ulong steps = 0;
        NativeUtil.Check(Native.heddle_optimizer_step(l.Ptr, learningRate ?? double.NaN, &steps));
        return (long)steps;
    }

    /// <summary>Fetches the optimizer's state (torch names).</summary>
    public OptimizerState GetState()
    {
        using var l = Use();
        ulong step = 0;
        nuint n = 0;
        NativeUtil.Check(Native.heddle_optimizer_state(l.Ptr, &step, &n));
        var tensors = new StateTensor[(int)n];
        for (int i = 0; i < tensors.Length; i++)
        {
            nuint rank = 0, count = 0;
            long* shape = Native.heddle_optimizer_state_shape(l.Ptr, (nuint)i, &rank);
            float* data = Native.heddle_optimizer_state_data(l.Ptr, (nuint)i, &count);
            tensors[i] = new StateTensor(NativeUtil.Str(Native.heddle_optimizer_state_name(l.Ptr, (nuint)i)), NativeUtil.Shape(shape, rank), new ReadOnlySpan<float>(data, (int)count).ToArray());
        }
        return new OptimizerState((long)step, tensors);
    }

    /// <summary>Frees the optimizer in the engine. Safe to call twice.</summary>
    public void Dispose() => _h.Dispose();
}
