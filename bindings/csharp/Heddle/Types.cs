namespace Heddle;

/// <summary>Loss names the engine knows.</summary>
public static class Losses
{
    /// <summary>Mean squared error; targets shaped like the output (f32).</summary>
    public const string Mse = "mse";

    /// <summary>Softmax cross-entropy; targets are class indices (i32/i64, one per row) or probabilities shaped like the output.</summary>
    public const string CrossEntropy = "cross_entropy";
}

/// <summary>One parameter tensor of a network: its full name (e.g. "layers.0.weight"), shape, and place in the flat weight order.</summary>
public sealed record ParameterInfo(string Name, IReadOnlyList<long> Shape, long Offset, long Count);

/// <summary>The result of <see cref="Network.Grad"/>: dLoss/dInput and every parameter's gradient, concatenated in parameter order.</summary>
public sealed class Gradients
{
    internal Gradients(IReadOnlyList<ParameterInfo> parameters, float[] input, float[]? weights)
    {
        Parameters = parameters;
        Input = input;
        Weights = weights ?? [];
    }

    internal IReadOnlyList<ParameterInfo> Parameters { get; }

    /// <summary>The input gradient, shaped like the input.</summary>
    public float[] Input { get; }

    /// <summary>Every parameter's gradient in parameter order (<see cref="Network.Parameters"/>); empty when not asked for.</summary>
    public float[] Weights { get; }

    /// <summary>The gradient of one parameter, by name.</summary>
    public ReadOnlySpan<float> Of(string parameter)
    {
        foreach (var p in Parameters)
            if (p.Name == parameter) return Weights.AsSpan((int)p.Offset, (int)p.Count);
        throw new KeyNotFoundException($"no parameter named '{parameter}'");
    }
}

/// <summary>The result of <see cref="Network.Loss"/>: the loss and dLoss/dOutput.</summary>
public sealed record LossResult(float Value, float[] OutputGrad);

/// <summary>The result of <see cref="Network.GradLoss"/>: the loss, dLoss/dInput and the weight gradients.</summary>
public sealed record LossGradients(float Loss, Gradients Gradients);

/// <summary>How to train (<see cref="Network.Train"/>); the defaults are the ABI's.</summary>
public sealed class TrainOptions
{
    public int Epochs { get; init; } = 1;
    public int BatchSize { get; init; } = 1;

    /// <summary><see cref="Losses.Mse"/> (default) or <see cref="Losses.CrossEntropy"/>.</summary>
    public string Loss { get; init; } = Losses.Mse;

    /// <summary>An optimizer spec as JSON (<c>"adamw"</c>, <c>{"type":"sgd","lr":0.1}</c>), used when <see cref="Optimizer"/> is null.</summary>
    public string? OptimizerSpec { get; init; }

    /// <summary>An optimizer of this network (<see cref="Network.CreateOptimizer"/>); its state carries on between calls.</summary>
    public Optimizer? Optimizer { get; init; }

    /// <summary>A learning-rate schedule as JSON, e.g. <c>{"type":"step","step_size":10,"gamma":0.5}</c>.</summary>
    public string? Schedule { get; init; }

    /// <summary>Clip gradients to this global L2 norm before each step; null: no clipping.</summary>
    public double? ClipNorm { get; init; }

    /// <summary>Shuffle the samples each epoch (seeded by <see cref="Seed"/>).</summary>
    public bool Shuffle { get; init; }

    /// <summary>Drives shuffling and stochastic layers (an integer below 2^53).</summary>
    public ulong Seed { get; init; }

    /// <summary>Report progress every this many steps (and after the last); 0: never.</summary>
    public int ProgressEvery { get; init; } = 1;
}

/// <summary>A progress report during training: after <see cref="Step"/> of <see cref="TotalSteps"/> optimizer steps.</summary>
public readonly record struct TrainProgress(int Epoch, long Step, long StepsPerEpoch, long TotalSteps, float Loss, double LearningRate);

/// <summary>The result of <see cref="Network.Train"/>.</summary>
public sealed record TrainResult(float FinalLoss, long Steps, float[] EpochLosses);

/// <summary>One optimizer state tensor, named <c>&lt;param&gt;.&lt;slot&gt;</c> (torch names, e.g. "layers.0.weight.exp_avg").</summary>
public sealed record StateTensor(string Name, IReadOnlyList<long> Shape, float[] Data);

/// <summary>An optimizer's state: the step count and its tensors (none before the first step).</summary>
public sealed record OptimizerState(long Step, IReadOnlyList<StateTensor> Tensors);
