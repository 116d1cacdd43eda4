namespace Coldmind.Tensors;

/// <summary>Loss functions, each returning a scalar tensor.</summary>
public sealed partial class Tensor
{
    /// <summary>
    /// Mean cross-entropy of logits (n, classes) against integer labels. With label smoothing ε the target
    /// is (1−ε)·one-hot + ε/classes. Optional per-example weights (e.g. from data curation) give a weighted mean.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, int[] labels, float labelSmoothing = 0f, float[]? weights = null)
    {
        if (logits.Rank != 2) throw new ColdmindException($"Cross-entropy needs logits (n, classes), got {Tensors.Shape.Format(logits.Shape)}.");
        int n = logits.Shape[0], c = logits.Shape[1];
        if (labels.Length != n) throw new ColdmindException($"{labels.Length} labels for {n} rows of logits.");
        if (weights != null && weights.Length != n) throw new ColdmindException($"{weights.Length} weights for {n} rows of logits.");
        if (labelSmoothing < 0 || labelSmoothing >= 1) throw new ColdmindException($"Label smoothing must be in [0, 1), got {labelSmoothing}.");
        var x = logits.Contiguous();
        var logp = NewBuffer(n * c);
        double total = 0, weightSum = 0;
        float off = labelSmoothing / c, on = 1f - labelSmoothing + off;
        for (int i = 0; i < n; i++)
        {
            if ((uint)labels[i] >= (uint)c) throw new ColdmindException($"Label {labels[i]} is outside 0..{c - 1}.");
            var lp = logp.AsSpan(i * c, c);
            LogSoftmaxRow(x.Span.Slice(i * c, c), lp);
            float loss = -(off * TensorPrimitives.Sum(lp) + (on - off) * lp[labels[i]]);
            float w = weights?[i] ?? 1f;
            total += (double)w * loss;
            weightSum += w;
        }
        float norm = weightSum > 0 ? (float)(1.0 / weightSum) : 0f;
        return FromOp([(float)(total * norm)], [], [x], o =>
        {
            // d/dz = (softmax − target) · w / Σw
            float g = o.Grad![0] * norm;
            var gx = logp; // reuse: logp becomes the gradient in place
            for (int i = 0; i < n; i++)
            {
                var row = gx.AsSpan(i * c, c);
                TensorPrimitives.Exp(row, row);
                TensorPrimitives.Subtract(row, off, row);
                row[labels[i]] -= on - off;
                TensorPrimitives.Multiply(row, g * (weights?[i] ?? 1f), row);
            }
            x.AccumulateOwnedGrad(gx);
        });
    }

    /// <summary>Mean squared error over all elements.</summary>
    public static Tensor MeanSquaredError(Tensor prediction, Tensor target)
    {
        if (!Tensors.Shape.SameShape(prediction.Shape, target.Shape))
            throw new ColdmindException($"MSE of shapes {Tensors.Shape.Format(prediction.Shape)} and {Tensors.Shape.Format(target.Shape)}.");
        return (prediction - target).Square().Mean();
    }

    /// <summary>
    /// Hinton's distillation loss: T² · mean over rows of KL(softmax(teacher/T) ‖ softmax(student/T)).
    /// The T² keeps gradient magnitudes comparable across temperatures. Both inputs get gradients.
    /// </summary>
    public static Tensor KlDivergence(Tensor studentLogits, Tensor teacherLogits, float temperature = 1f)
    {
        if (!Tensors.Shape.SameShape(studentLogits.Shape, teacherLogits.Shape) || studentLogits.Rank < 1)
            throw new ColdmindException($"KL divergence of shapes {Tensors.Shape.Format(studentLogits.Shape)} and {Tensors.Shape.Format(teacherLogits.Shape)}.");
        if (!(temperature > 0)) throw new ColdmindException($"Temperature must be positive, got {temperature}.");
        var s = studentLogits.Contiguous();
        var t = teacherLogits.Contiguous();
        int c = s.Shape[^1], rows = s.Numel / Math.Max(c, 1);
        var logq = NewBuffer(s.Numel);
        var logp = NewBuffer(s.Numel);
        var kl = new float[rows];
        var scaled = new float[c];
        double total = 0;
        for (int r = 0; r < rows; r++)
        {
            TensorPrimitives.Divide(s.Span.Slice(r * c, c), temperature, scaled);
            LogSoftmaxRow(scaled, logq.AsSpan(r * c, c));
            TensorPrimitives.Divide(t.Span.Slice(r * c, c), temperature, scaled);
            LogSoftmaxRow(scaled, logp.AsSpan(r * c, c));
            double sum = 0;
            for (int j = 0; j < c; j++)
            {
                double lp = logp[r * c + j];
                sum += Math.Exp(lp) * (lp - logq[r * c + j]);
            }
            kl[r] = (float)sum;
            total += sum;
        }
        float t2 = temperature * temperature;
        return FromOp([(float)(total * t2 / rows)], [], [s, t], o =>
        {
            float g = o.Grad![0] * t2 / rows / temperature;
            if (s.RequiresGrad)
            {
                // d/ds = (q − p) / T
                var gs = NewBuffer(s.Numel);
                for (int i = 0; i < gs.Length; i++) gs[i] = g * (MathF.Exp(logq[i]) - MathF.Exp(logp[i]));
                s.AccumulateGrad(gs);
            }
            if (t.RequiresGrad)
            {
                // d/dt = p ⊙ ((log p − log q) − KL) / T
                var gt = NewBuffer(t.Numel);
                for (int i = 0; i < gt.Length; i++) gt[i] = g * MathF.Exp(logp[i]) * (logp[i] - logq[i] - kl[i / c]);
                t.AccumulateGrad(gt);
            }
        });
    }
}
