using Coldmind.Tensors;

namespace Coldmind.Nn.Privacy;

/// <summary>
/// The DP-SGD gradient (Abadi et al. 2016) of a stack of dense layers with ReLU between them (an <see cref="Mlp"/>):
/// every example's gradient clipped to norm C, summed, Gaussian noise of standard deviation σ·C added, divided by
/// the batch size. Per-example gradients come from one forward and one backward pass of the engine's layers, not a loop
/// of batches of one: a dense layer's gradient for example i is the outer product gᵢ hᵢᵀ of the gradient at its
/// output and its input, so its squared norm is ‖gᵢ‖²‖hᵢ‖² (+ ‖gᵢ‖² for the bias; Goodfellow 2015), and the
/// clipped sum is Σᵢ cᵢ gᵢ hᵢᵀ — only (batch × width) vectors are kept, never a gradient per example.
/// </summary>
public static class DpSgd
{
    /// <summary>
    /// The noised, clipped mean gradient of the cross-entropy of <paramref name="x"/> (batch, …: flattened) against
    /// <paramref name="labels"/> for <paramref name="layers"/> (weight (out, in), bias (out)), flat in the layers'
    /// order (weight, then bias); <paramref name="norms"/> gets each example's gradient norm before clipping.
    /// </summary>
    public static float[] Gradient(IReadOnlyList<(Tensor Weight, Tensor Bias)> layers, Tensor x, int[] labels,
        double clip, double sigma, Rng noise, out float[] norms)
    {
        int batch = labels.Length;
        // Each layer's output is handed on as a leaf "tap": the engine drops the gradients of intermediate results,
        // but keeps a leaf's, so the backward pass runs stage by stage and every tap holds ∂loss/∂z, (batch, out).
        var inputs = new List<float[]>();
        var outputs = new List<Tensor>();
        var taps = new List<Tensor>();
        var h = Tensor.FromArray(x.ToArray(), batch, x.Numel / batch); // flattened, as the Mlp's first layer does
        for (int l = 0; l < layers.Count; l++)
        {
            inputs.Add(h.ToArray());
            var z = Tensor.Linear(h, layers[l].Weight, layers[l].Bias);
            outputs.Add(z);
            var tap = Tensor.FromArray(z.ToArray(), z.Shape).AsParameter();
            taps.Add(tap);
            h = l < layers.Count - 1 ? tap.Relu() : tap;
        }
        Tensor.CrossEntropy(h, labels).Backward(); // a mean: each row's gradient is gᵢ / batch
        var grads = new float[layers.Count][];
        for (int l = layers.Count - 1; l >= 0; l--)
        {
            grads[l] = taps[l].Grad ?? new float[taps[l].Numel];
            outputs[l].Backward(grads[l].ToArray()); // on into the layer below's tap (and this layer's batch gradient, unused)
        }
        foreach (var (w, b) in layers) { w.ZeroGrad(); b.ZeroGrad(); }

        var squared = new double[batch];
        for (int l = 0; l < layers.Count; l++)
        {
            int width = layers[l].Weight.Shape[1], outs = layers[l].Weight.Shape[0];
            TensorPrimitives.Multiply(grads[l], batch, grads[l]);
            for (int i = 0; i < batch; i++)
            {
                float g2 = TensorPrimitives.SumOfSquares(grads[l].AsSpan(i * outs, outs));
                float h2 = TensorPrimitives.SumOfSquares(inputs[l].AsSpan(i * width, width));
                squared[i] += (double)g2 * (h2 + 1);
            }
        }
        norms = squared.Select(s => (float)Math.Sqrt(s)).ToArray();
        var factors = norms.Select(n => n > clip ? (float)(clip / n) : 1f).ToArray();

        int total = layers.Sum(p => p.Weight.Numel + p.Bias.Numel), at = 0;
        var result = new float[total];
        for (int l = 0; l < layers.Count; l++)
        {
            int width = layers[l].Weight.Shape[1], outs = layers[l].Weight.Shape[0];
            var weight = result.AsSpan(at, outs * width);
            var bias = result.AsSpan(at + outs * width, outs);
            for (int i = 0; i < batch; i++)
            {
                var g = grads[l].AsSpan(i * outs, outs);
                var hi = inputs[l].AsSpan(i * width, width);
                for (int o = 0; o < outs; o++)
                {
                    float s = factors[i] * g[o];
                    if (s == 0) continue;
                    TensorPrimitives.MultiplyAdd(hi, s, weight.Slice(o * width, width), weight.Slice(o * width, width));
                    bias[o] += s;
                }
            }
            at += outs * width + outs;
        }
        float sd = (float)(sigma * clip);
        for (int i = 0; i < result.Length; i++) result[i] = (result[i] + sd * noise.NextNormal()) / batch;
        return result;
    }
}
