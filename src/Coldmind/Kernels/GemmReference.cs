namespace Coldmind.Kernels;

/// <summary>The naive GEMM, kept beside the fast one as its specification and test oracle.</summary>
public static unsafe class GemmReference
{
    /// <summary>C (m,n; row stride ldc) (+)= A (m,k; strides rsA,csA) @ B (k,n; strides rsB,csB), summed in double.</summary>
    public static void Multiply(int m, int n, int k, float* a, int rsA, int csA, float* b, int rsB, int csB, float* c, int ldc, bool accumulate)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = accumulate ? c[i * ldc + j] : 0;
                for (int p = 0; p < k; p++) s += (double)a[i * rsA + p * csA] * b[p * rsB + j * csB];
                c[i * ldc + j] = (float)s;
            }
    }
}
