using Coldmind.Tensors;

namespace Coldmind.Nn;

/// <summary>y = x Wᵀ + b; weight (out, in), bias (out). PyTorch's default init: U(±1/√in).</summary>
public sealed class Linear : Module
{
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    public Linear(int inFeatures, int outFeatures, Rng rng, bool bias = true)
    {
        float bound = 1f / MathF.Sqrt(inFeatures);
        Weight = Parameter("weight", Tensor.Uniform(rng, -bound, bound, outFeatures, inFeatures));
        if (bias) Bias = Parameter("bias", Tensor.Uniform(rng, -bound, bound, outFeatures));
    }

    public override Tensor Forward(Tensor x) => Tensor.Linear(x, Weight, Bias);
}

/// <summary>2-D convolution; weight (out, in, k, k), bias (out). PyTorch's default init: U(±1/√(in·k·k)).</summary>
public sealed class Conv2d : Module
{
    public Tensor Weight { get; }
    public Tensor? Bias { get; }
    public int Stride { get; }
    public int Padding { get; }

    public Conv2d(int inChannels, int outChannels, int kernel, Rng rng, int stride = 1, int padding = 0, bool bias = true)
    {
        float bound = 1f / MathF.Sqrt(inChannels * kernel * kernel);
        Weight = Parameter("weight", Tensor.Uniform(rng, -bound, bound, outChannels, inChannels, kernel, kernel));
        if (bias) Bias = Parameter("bias", Tensor.Uniform(rng, -bound, bound, outChannels));
        Stride = stride;
        Padding = padding;
    }

    public override Tensor Forward(Tensor x) => Tensor.Conv2d(x, Weight, Bias, Stride, Padding);
}

public sealed class MaxPool2d(int kernel, int stride = 0) : Module
{
    public int Kernel => kernel;
    public int Stride => stride == 0 ? kernel : stride;

    public override Tensor Forward(Tensor x) => x.MaxPool2d(kernel, stride);
}

/// <summary>Token embedding table (vocab, dim); Forward takes ids as a float tensor (batch, time).</summary>
public sealed class Embedding : Module
{
    public Tensor Weight { get; }

    public Embedding(int vocab, int dim, Rng rng, float std = 1f) => Weight = Parameter("weight", Tensor.Normal(rng, std, vocab, dim));

    public Tensor Forward(int[] ids, params int[] shape) => Tensor.Embedding(Weight, ids, shape);

    public override Tensor Forward(Tensor ids) =>
        Forward(ids.ToArray().Select(v => (int)v).ToArray(), ids.Shape);
}

public sealed class RmsNorm : Module
{
    public Tensor Weight { get; }
    public float Eps { get; }

    public RmsNorm(int dim, float eps = 1e-6f)
    {
        Weight = Parameter("weight", Tensor.Full(1f, dim));
        Eps = eps;
    }

    public override Tensor Forward(Tensor x) => Tensor.RmsNorm(x, Weight, Eps);
}

public sealed class LayerNorm : Module
{
    public Tensor Weight { get; }
    public Tensor Bias { get; }
    public float Eps { get; }

    public LayerNorm(int dim, float eps = 1e-5f)
    {
        Weight = Parameter("weight", Tensor.Full(1f, dim));
        Bias = Parameter("bias", Tensor.Zeros(dim));
        Eps = eps;
    }

    public override Tensor Forward(Tensor x) => Tensor.LayerNorm(x, Weight, Bias, Eps);
}

/// <summary>Inverted dropout in training mode, identity in evaluation mode.</summary>
public sealed class Dropout(float p, Rng rng) : Module
{
    public override Tensor Forward(Tensor x) => Training && p > 0 ? x.Dropout(p, rng) : x;
}

public enum Activation { Relu, SquaredRelu, Gelu, Silu, Tanh, Sigmoid }

public sealed class ActivationLayer(Activation kind) : Module
{
    public Activation Kind { get; } = kind;

    public override Tensor Forward(Tensor x) => Apply(x, Kind);

    public static Tensor Apply(Tensor x, Activation kind) => kind switch
    {
        Activation.Relu => x.Relu(),
        Activation.SquaredRelu => x.SquaredRelu(),
        Activation.Gelu => x.Gelu(),
        Activation.Silu => x.Silu(),
        Activation.Tanh => x.Tanh(),
        _ => x.Sigmoid(),
    };
}

/// <summary>Collapses every axis after the first: (n, …) → (n, features).</summary>
public sealed class Flatten : Module
{
    public override Tensor Forward(Tensor x) => x.Reshape(x.Shape[0], -1);
}

/// <summary>
/// BitNet b1.58's linear layer: y = ternary(W) · int8(RMSNorm(x)), no bias. The weight stays a float
/// "latent" parameter that the optimizer updates; the forward pass uses its absmean ternarization, and the
/// input goes through an RMSNorm (SubLN placement of BitNet b1.58 2B4T) and per-token absmax int8
/// quantization. <see cref="Lambda"/> blends float and quantized values for a gradual conversion.
/// </summary>
public sealed class BitLinear : Module
{
    public Tensor Weight { get; }
    /// <summary>The norm before activation quantization; null where the model puts one in front of the layer (BitNet 2B4T's attn_norm, sub-norms).</summary>
    public RmsNorm? Norm { get; }

    /// <summary>0: a float layer (after the norm); 1: fully quantized. Set by the trainer's warm-up.</summary>
    public float Lambda { get; set; } = 1f;

    public BitLinear(int inFeatures, int outFeatures, Rng rng, bool norm = true)
    {
        float bound = 1f / MathF.Sqrt(inFeatures);
        Weight = Parameter("weight", Tensor.Uniform(rng, -bound, bound, outFeatures, inFeatures));
        if (norm) Norm = Child("norm", new RmsNorm(inFeatures));
    }

    public override Tensor Forward(Tensor x) =>
        Tensor.Linear((Norm?.Forward(x) ?? x).Int8ActivationsSte(Lambda), Weight.TernaryWeightsSte(Lambda), null);
}
