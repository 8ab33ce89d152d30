// The slice of the Metal Shading Language standard library that RingKernel's
// MSL emitter uses, for checking (and running) emitted MSL with a C++ compiler.
//
// Two modes:
//  * check (default): address spaces are clang address-space attributes, so a
//    device pointer passed where a threadgroup one is expected is an error;
//    atomics are opaque (only the atomic_*_explicit functions touch them) and
//    every function has strict overloads (deleted templates catch the rest), so
//    MSL that is not type-correct fails `clang -fsyntax-only`.
//  * exec (RK_SHIM_EXEC defined): qualifiers vanish and atomics are plain
//    memory, so barrier-free kernels compile into a host shared library that a
//    driver runs one thread after another.
//
// Identifiers the emitter generates start with rk_; user identifiers never do.
#ifndef RK_METAL_SHIM_H
#define RK_METAL_SHIM_H

#ifdef RK_SHIM_EXEC
#define device
#define constant
#define RK_TG_SPACE
#else
#define device __attribute__((address_space(1)))
#define constant __attribute__((address_space(2)))
// clang rejects address-space attributes on function-scope arrays, so
// threadgroup memory is the generic space; device memory still cannot mix with it.
#define RK_TG_SPACE
#endif
#define threadgroup RK_TG_SPACE
#define thread
#define kernel

typedef unsigned int uint;
typedef unsigned long ulong;
typedef unsigned char uchar;
typedef unsigned short ushort;
// half: the emitter only stores, loads, passes and converts it (arithmetic is
// in float), so a 16-bit storage type stands in for Metal's (C++17 compilers
// on x86 need not have _Float16): in check mode a distinct scalar type that
// converts only explicitly, in exec mode one with exact IEEE conversions.
#ifndef RK_SHIM_EXEC
enum class half : unsigned short {};
#else
struct half {
    unsigned short bits;
    half() = default;
    explicit half(float f) : bits(from_float(f)) {}
    explicit operator float() const { return to_float(bits); }

    static unsigned short from_float(float f) {
        unsigned int x = __builtin_bit_cast(unsigned int, f);
        unsigned int sign = (x >> 16) & 0x8000u;
        unsigned int exp = (x >> 23) & 0xffu;
        unsigned int man = x & 0x7fffffu;
        if (exp == 0xffu) {
            return static_cast<unsigned short>(sign | 0x7c00u | (man ? 0x200u : 0u));
        }
        int e = static_cast<int>(exp) - 127 + 15;
        if (e >= 31) {
            return static_cast<unsigned short>(sign | 0x7c00u);
        }
        unsigned int shift = e <= 0 ? static_cast<unsigned int>(14 - e) : 13u;
        if (shift > 24u) {
            return static_cast<unsigned short>(sign);
        }
        unsigned int full = e <= 0 ? (man | 0x800000u) : man;
        unsigned int kept = full >> shift;
        unsigned int rest = full & ((1u << shift) - 1u);
        unsigned int halfway = 1u << (shift - 1u);
        unsigned int base = e <= 0 ? kept : ((static_cast<unsigned int>(e) << 10) | kept);
        if (rest > halfway || (rest == halfway && (base & 1u))) {
            base += 1u;  // a carry into the exponent is the correct rounding
        }
        return static_cast<unsigned short>(sign | base);
    }

    static float to_float(unsigned short h) {
        unsigned int sign = (static_cast<unsigned int>(h) & 0x8000u) << 16;
        unsigned int exp = (h >> 10) & 0x1fu;
        unsigned int man = h & 0x3ffu;
        unsigned int x;
        if (exp == 0x1fu) {
            x = sign | 0x7f800000u | (man << 13);
        } else if (exp != 0u) {
            x = sign | ((exp + 112u) << 23) | (man << 13);
        } else if (man == 0u) {
            x = sign;
        } else {
            unsigned int e = 113u;
            while ((man & 0x400u) == 0u) {
                man <<= 1;
                e -= 1u;
            }
            x = sign | (e << 23) | ((man & 0x3ffu) << 13);
        }
        return __builtin_bit_cast(float, x);
    }
};
#endif
static_assert(sizeof(long) == 8, "MSL long is 64-bit");

struct uint3 {
    uint x, y, z;
};

namespace metal {

// --- reinterpretation -------------------------------------------------------

template <typename T, typename U>
inline T as_type(U value) {
    static_assert(sizeof(T) == sizeof(U), "as_type needs equal sizes");
    return __builtin_bit_cast(T, value);
}

// --- math: float only, except abs/min/max ----------------------------------

#ifdef RK_SHIM_EXEC
#define RK_MATH1(name, impl) \
    inline float name(float x) { return impl(x); }
#define RK_MATH2(name, impl) \
    inline float name(float x, float y) { return impl(x, y); }
#else
#define RK_MATH1(name, impl) float name(float x);
#define RK_MATH2(name, impl) float name(float x, float y);
#endif

#ifdef RK_SHIM_EXEC
inline float rk_shim_rsqrt(float x) { return 1.0f / __builtin_sqrtf(x); }
#endif

#define RK_TRANSCENDENTALS                      \
    RK_MATH2(fmod, __builtin_fmodf)             \
    RK_MATH1(sqrt, __builtin_sqrtf)             \
    RK_MATH1(rsqrt, rk_shim_rsqrt)              \
    RK_MATH1(exp, __builtin_expf)               \
    RK_MATH1(log, __builtin_logf)               \
    RK_MATH1(sin, __builtin_sinf)               \
    RK_MATH1(cos, __builtin_cosf)               \
    RK_MATH1(tan, __builtin_tanf)               \
    RK_MATH1(tanh, __builtin_tanhf)             \
    RK_MATH2(pow, __builtin_powf)               \
    RK_MATH2(atan2, __builtin_atan2f)

#define RK_DELETED_GENERICS                              \
    template <typename T> T sqrt(T) = delete;            \
    template <typename T> T rsqrt(T) = delete;           \
    template <typename T> T exp(T) = delete;             \
    template <typename T> T log(T) = delete;             \
    template <typename T> T sin(T) = delete;             \
    template <typename T> T cos(T) = delete;             \
    template <typename T> T tan(T) = delete;             \
    template <typename T> T tanh(T) = delete;            \
    template <typename T, typename U> T pow(T, U) = delete;  \
    template <typename T, typename U> T fmod(T, U) = delete;  \
    template <typename T, typename U> T atan2(T, U) = delete;

RK_TRANSCENDENTALS
RK_DELETED_GENERICS

namespace precise {
RK_TRANSCENDENTALS
RK_DELETED_GENERICS
}  // namespace precise

namespace fast {
RK_TRANSCENDENTALS
RK_DELETED_GENERICS
}  // namespace fast

RK_MATH1(floor, __builtin_floorf)
RK_MATH1(ceil, __builtin_ceilf)
RK_MATH1(fabs, __builtin_fabsf)
RK_MATH1(rint, __builtin_rintf)
template <typename T> T rint(T) = delete;
template <typename T> T floor(T) = delete;
template <typename T> T ceil(T) = delete;
template <typename T> T fabs(T) = delete;

#ifdef RK_SHIM_EXEC
inline float fma(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
inline bool isnan(float x) { return __builtin_isnan(x); }
inline float abs(float x) { return __builtin_fabsf(x); }
inline int abs(int x) { return x < 0 ? int(0u - uint(x)) : x; }
inline uint abs(uint x) { return x; }
inline long abs(long x) { return x < 0 ? long(0ul - ulong(x)) : x; }
inline ulong abs(ulong x) { return x; }
#define RK_MINMAX(T)                                      \
    inline T min(T a, T b) { return b < a ? b : a; }      \
    inline T max(T a, T b) { return a < b ? b : a; }
inline float min(float a, float b) { return __builtin_fminf(a, b); }
inline float max(float a, float b) { return __builtin_fmaxf(a, b); }
#else
float fma(float a, float b, float c);
bool isnan(float x);
float abs(float x);
int abs(int x);
uint abs(uint x);
long abs(long x);
ulong abs(ulong x);
#define RK_MINMAX(T) \
    T min(T a, T b); \
    T max(T a, T b);
float min(float a, float b);
float max(float a, float b);
#endif
RK_MINMAX(int)
RK_MINMAX(uint)
RK_MINMAX(long)
RK_MINMAX(ulong)
template <typename T> T fma(T, T, T) = delete;
template <typename T> bool isnan(T) = delete;
template <typename T> T abs(T) = delete;
template <typename T, typename U> T min(T, U) = delete;
template <typename T, typename U> T max(T, U) = delete;

// --- copysign and the integer bit functions (popcount, clz, ctz, reverse_bits) ---

RK_MATH2(copysign, __builtin_copysignf)
template <typename T, typename U> T copysign(T, U) = delete;

#ifdef RK_SHIM_EXEC
#define RK_BITS(T, U, N, POPC, CLZ, CTZ)                                              \
    inline T popcount(T x) { return T(POPC(U(x))); }                                  \
    inline T clz(T x) { return U(x) == 0 ? T(N) : T(CLZ(U(x))); }                     \
    inline T ctz(T x) { return U(x) == 0 ? T(N) : T(CTZ(U(x))); }                     \
    inline T reverse_bits(T x) {                                                      \
        U v = U(x), r = 0;                                                            \
        for (int i = 0; i < N; i++) { r = (r << 1) | (v & 1); v >>= 1; }              \
        return T(r);                                                                  \
    }
#else
#define RK_BITS(T, U, N, POPC, CLZ, CTZ) \
    T popcount(T x);                     \
    T clz(T x);                          \
    T ctz(T x);                          \
    T reverse_bits(T x);
#endif
RK_BITS(int, uint, 32, __builtin_popcount, __builtin_clz, __builtin_ctz)
RK_BITS(uint, uint, 32, __builtin_popcount, __builtin_clz, __builtin_ctz)
RK_BITS(long, ulong, 64, __builtin_popcountl, __builtin_clzl, __builtin_ctzl)
RK_BITS(ulong, ulong, 64, __builtin_popcountl, __builtin_clzl, __builtin_ctzl)
template <typename T> T popcount(T) = delete;
template <typename T> T clz(T) = delete;
template <typename T> T ctz(T) = delete;
template <typename T> T reverse_bits(T) = delete;

// --- barriers ---------------------------------------------------------------

enum class mem_flags { mem_none = 0, mem_device = 1, mem_threadgroup = 2 };
constexpr mem_flags operator|(mem_flags a, mem_flags b) {
    return static_cast<mem_flags>(static_cast<int>(a) | static_cast<int>(b));
}

#ifdef RK_SHIM_EXEC
inline void threadgroup_barrier(mem_flags) {}
#else
void threadgroup_barrier(mem_flags flags);
#endif

// --- SIMD groups (rk.shfl, rk.ballot, ...) --------------------------------------
// Exec mode links one-lane versions (the CPU harness never runs a SIMD kernel: it
// refuses them as it refuses barriers; the module's other kernels must still link).

typedef unsigned short ushort;
#ifdef RK_SHIM_EXEC
struct simd_vote {
    typedef ulong vote_t;
    vote_t bits;
    explicit operator vote_t() const { return bits; }
};
template <typename T> T simd_shuffle(T value, ushort) { return value; }
template <typename T> T simd_shuffle_up(T value, ushort) { return value; }
template <typename T> T simd_shuffle_down(T value, ushort) { return value; }
template <typename T> T simd_shuffle_xor(T value, ushort) { return value; }
inline simd_vote simd_ballot(bool predicate) { return simd_vote{predicate ? 1ul : 0ul}; }
inline bool simd_any(bool predicate) { return predicate; }
inline bool simd_all(bool predicate) { return predicate; }
inline void simdgroup_barrier(mem_flags) {}
template <typename T> T select(T a, T b, bool c) { return c ? b : a; }
#else
struct simd_vote {
    typedef ulong vote_t;
    explicit operator vote_t() const;
};
template <typename T> T simd_shuffle(T value, ushort lane);
template <typename T> T simd_shuffle_up(T value, ushort delta);
template <typename T> T simd_shuffle_down(T value, ushort delta);
template <typename T> T simd_shuffle_xor(T value, ushort mask);
simd_vote simd_ballot(bool predicate);
bool simd_any(bool predicate);
bool simd_all(bool predicate);
void simdgroup_barrier(mem_flags flags);
template <typename T> T select(T a, T b, bool c);
#endif

// --- atomics ----------------------------------------------------------------

enum memory_order { memory_order_relaxed };

template <typename T>
struct atomic {
#ifdef RK_SHIM_EXEC
    T rk_value;
#else
    atomic() = default;
    atomic(const atomic&) = delete;
    atomic& operator=(const atomic&) = delete;

   private:
    T rk_value;
#endif
};

typedef atomic<int> atomic_int;
typedef atomic<uint> atomic_uint;
typedef atomic<float> atomic_float;

#ifdef RK_SHIM_EXEC
#define RK_ATOMIC_RMW(SPACE, T, name, expr)                                   \
    inline T name(SPACE atomic<T>* object, T operand, memory_order) {         \
        T old = object->rk_value;                                             \
        object->rk_value = (expr);                                            \
        return old;                                                           \
    }
#define RK_ATOMIC_LOAD_STORE(SPACE, T)                                        \
    inline T atomic_load_explicit(SPACE atomic<T>* object, memory_order) {    \
        return object->rk_value;                                              \
    }                                                                         \
    inline void atomic_store_explicit(SPACE atomic<T>* object, T desired,     \
                                      memory_order) {                         \
        object->rk_value = desired;                                           \
    }
#define RK_ATOMIC_CAS(SPACE, T)                                               \
    inline bool atomic_compare_exchange_weak_explicit(                        \
        SPACE atomic<T>* object, thread T* expected, T desired, memory_order, \
        memory_order) {                                                       \
        if (object->rk_value == *expected) {                                  \
            object->rk_value = desired;                                       \
            return true;                                                      \
        }                                                                     \
        *expected = object->rk_value;                                         \
        return false;                                                         \
    }
#else
#define RK_ATOMIC_RMW(SPACE, T, name, expr) \
    T name(SPACE atomic<T>* object, T operand, memory_order order);
#define RK_ATOMIC_LOAD_STORE(SPACE, T)                                   \
    T atomic_load_explicit(SPACE atomic<T>* object, memory_order order); \
    void atomic_store_explicit(SPACE atomic<T>* object, T desired, memory_order order);
#define RK_ATOMIC_CAS(SPACE, T)                                                   \
    bool atomic_compare_exchange_weak_explicit(SPACE atomic<T>* object,           \
                                               thread T* expected, T desired,     \
                                               memory_order success,              \
                                               memory_order failure);
#endif

#define RK_ATOMIC_COMMON(SPACE, T)                                                      \
    RK_ATOMIC_LOAD_STORE(SPACE, T)                                                      \
    RK_ATOMIC_RMW(SPACE, T, atomic_fetch_add_explicit, T(object->rk_value + operand))   \
    RK_ATOMIC_RMW(SPACE, T, atomic_fetch_sub_explicit, T(object->rk_value - operand))   \
    RK_ATOMIC_RMW(SPACE, T, atomic_exchange_explicit, operand)

#define RK_ATOMIC_INTEGER(SPACE, T)                                                          \
    RK_ATOMIC_COMMON(SPACE, T)                                                               \
    RK_ATOMIC_CAS(SPACE, T)                                                                  \
    RK_ATOMIC_RMW(SPACE, T, atomic_fetch_min_explicit, min(object->rk_value, operand))       \
    RK_ATOMIC_RMW(SPACE, T, atomic_fetch_max_explicit, max(object->rk_value, operand))       \
    RK_ATOMIC_RMW(SPACE, T, atomic_fetch_and_explicit, T(object->rk_value & operand))        \
    RK_ATOMIC_RMW(SPACE, T, atomic_fetch_or_explicit, T(object->rk_value | operand))         \
    RK_ATOMIC_RMW(SPACE, T, atomic_fetch_xor_explicit, T(object->rk_value ^ operand))

#define RK_ATOMIC_SPACE(SPACE)     \
    RK_ATOMIC_INTEGER(SPACE, int)  \
    RK_ATOMIC_INTEGER(SPACE, uint) \
    RK_ATOMIC_COMMON(SPACE, float)

RK_ATOMIC_SPACE(device)
#ifndef RK_SHIM_EXEC
// In exec mode every space is the same, so one set of overloads serves all.
RK_ATOMIC_SPACE(threadgroup)
#endif

#undef RK_ATOMIC_SPACE
#undef RK_ATOMIC_INTEGER
#undef RK_ATOMIC_COMMON
#undef RK_ATOMIC_CAS
#undef RK_ATOMIC_LOAD_STORE
#undef RK_ATOMIC_RMW
#undef RK_MINMAX
#undef RK_DELETED_GENERICS
#undef RK_TRANSCENDENTALS
#undef RK_MATH2
#undef RK_MATH1

}  // namespace metal

#endif  // RK_METAL_SHIM_H
