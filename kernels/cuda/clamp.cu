// kernels/cuda/clamp.cu: element-wise bounds (kernels/cpu/clamp.c), NaN passing through.
#include "kernels/cuda/map.cuh"

struct ClampOp {
    float lo, hi;
    __device__ float operator()(float x) const { return x < lo ? lo : x > hi ? hi : x; }
};

// out, x (n); out may alias x. 8 n bytes.
void cuda_clamp(float *out, const float *x, float lo, float hi, size_t n) { map_unary(out, x, n, ClampOp{lo, hi}); }
