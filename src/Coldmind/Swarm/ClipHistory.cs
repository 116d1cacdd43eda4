namespace Coldmind.Swarm;

/// <summary>
/// The clipping norm a receiver sets itself when none is given (<see cref="GossipOptions.AutoClip"/>): the median
/// norm of the last <see cref="Length"/> steps it took towards received models, once it has seen
/// <see cref="Warmup"/>. Honest steps shrink as the swarm agrees, and the bound follows them without a knob fitted
/// to the model's size; a poisoned model far from the rest is pulled in to that bound, and as long as fewer than
/// half of the recent messages are poisoned the median is an honest step's. Twice the median let a poisoner
/// sending as often as a node take three digits nodes to 27 % (TrustTests); the median itself held them at 90 %,
/// at a cost of 0.1–0.3 pt on honest walks (docs/swarm.md).
/// </summary>
public sealed class ClipHistory
{
    public const int Length = 31, Warmup = 5;
    public const float Factor = 1;
    private readonly Queue<float> _norms = new();

    public void Add(float norm)
    {
        if (!float.IsFinite(norm)) return;
        _norms.Enqueue(norm);
        if (_norms.Count > Length) _norms.Dequeue();
    }

    /// <summary>The bound on the next step (0: none yet).</summary>
    public float Bound()
    {
        if (_norms.Count < Warmup) return 0;
        var sorted = _norms.Order().ToArray();
        return Factor * sorted[sorted.Length / 2];
    }
}
