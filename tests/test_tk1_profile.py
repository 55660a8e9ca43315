"""The TK1 profile of csrc/ (DESIGN.md): C++03, no feature newer than CUDA 6.5 /
compute capability 3.2, self-contained sources, per-kernel resource limits.

Checked by compiling, not by review: nvcc -std=c++03 for every .cu, ptxas -v
for registers and shared memory, the PTX for forbidden instructions, and a lint
for what a modern nvcc would accept anyway. nvcc-based checks skip without nvcc.
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nnlite.kernels import nvrtc as cuda_kernels

CSRC = Path(__file__).resolve().parents[1] / "csrc"
CU_FILES = sorted((CSRC / "cuda").glob("*.cu"))
HEADERS = sorted((CSRC / "nnlite").glob("*.cuh"))
LINTED = HEADERS + sorted(p for p in (CSRC / "cuda").iterdir() if p.is_file())
MAX_REGISTERS = 63
MAX_SHARED_BYTES = 48 * 1024

NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found on PATH")
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not found on PATH")
by_name = dict(ids=lambda p: p.name)


def run(cmd, cwd=None):
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def oldest_sm():
    """The oldest real architecture this nvcc targets (sm_32 itself is gone from
    modern toolkits; the oldest left is the closest stand-in)."""
    listed = subprocess.run([NVCC, "--list-gpu-arch"], capture_output=True, text=True).stdout
    numbers = [int(n) for n in re.findall(r"compute_(\d+)", listed)]
    return f"sm_{min(numbers)}" if numbers else "sm_75"


def global_kernels(source):
    return re.findall(r"__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(",
                      strip_comments(source))


# ---------------------------------------------------------------- compile --

def test_there_is_something_to_check():
    assert CU_FILES and HEADERS, f"no kernel sources under {CSRC}"


@needs_nvcc
@pytest.mark.parametrize("cu", CU_FILES, **by_name)
def test_ptx_compiles_as_cxx03_without_forbidden_instructions(cu, tmp_path):
    ptx = tmp_path / (cu.stem + ".ptx")
    run([NVCC, "-std=c++03", f"-I{CSRC}", "-ptx", str(cu), "-o", str(ptx)])
    text = ptx.read_text()
    forbidden = {
        r"\b(?:atom|red)\.[\w.]*add\.f64\b": "double-precision atomic add",
        r"\.f16(?:x2)?\b|\.bf16": "half-precision arithmetic",
        r"\bcudaLaunchDevice\b": "dynamic parallelism",
        r"\.managed\b": "managed memory",
    }
    for pattern, what in forbidden.items():
        assert not re.search(pattern, text), f"{cu.name}: PTX contains {what} ({pattern})"


@needs_nvcc
@pytest.mark.parametrize("cu", CU_FILES, **by_name)
def test_inlined_source_compiles_alone(cu, tmp_path):
    """What NVRTC receives: one string, no include path."""
    single = tmp_path / cu.name
    single.write_text(cuda_kernels.load_source(f"cuda/{cu.name}"))
    run([NVCC, "-std=c++03", "-ptx", str(single), "-o", str(tmp_path / "out.ptx")])


@needs_nvcc
@pytest.mark.parametrize("cu", CU_FILES, **by_name)
def test_registers_and_shared_memory_within_tk1_limits(cu, tmp_path):
    log = run([NVCC, "-std=c++03", f"-I{CSRC}", f"-arch={oldest_sm()}", "-cubin",
               "-Xptxas", "-v", str(cu), "-o", str(tmp_path / "out.cubin")])
    usage, kernel = {}, None
    for line in log.splitlines():
        entry = re.search(r"Compiling entry function '(\w+)'", line)
        if entry:
            kernel = entry.group(1)
        used = re.search(r"Used (\d+) registers", line)
        if used and kernel:
            shared = re.search(r"(\d+) bytes smem", line)
            usage[kernel] = (int(used.group(1)), int(shared.group(1)) if shared else 0)
    declared = global_kernels(cu.read_text())
    assert sorted(usage) == sorted(declared), f"{cu.name}: ptxas reported {sorted(usage)}, " \
                                              f"the source declares {sorted(declared)}"
    for name, (registers, shared) in usage.items():
        assert registers <= MAX_REGISTERS, \
            f"{cu.name}: kernel {name} uses {registers} registers; the TK1 cap is {MAX_REGISTERS}"
        assert shared <= MAX_SHARED_BYTES, \
            f"{cu.name}: kernel {name} uses {shared} bytes of static shared memory; " \
            f"the TK1 cap is {MAX_SHARED_BYTES}"


@pytest.mark.parametrize("cu", CU_FILES, **by_name)
def test_entry_points_table_matches_source(cu):
    """nnlite.kernels.nvrtc resolves the entry points it parses; a kernel missing from
    the table would never be compile-checked."""
    assert sorted(cuda_kernels.family_signatures(cu.stem)) == \
        sorted(global_kernels(cu.read_text()))


def nvrtc_or_skip():
    try:
        from cupy_backends.cuda.libs import nvrtc
        nvrtc.getVersion()
    except Exception as exc:  # no CuPy, or CuPy without a loadable libnvrtc
        pytest.skip(f"NVRTC is not loadable through CuPy here ({type(exc).__name__}: {exc})")
    return nvrtc


@pytest.mark.parametrize("cu", CU_FILES, **by_name)
def test_nvrtc_compiles_what_the_gpu_backend_sends(cu):
    """The exact string and options of nnlite.kernels.nvrtc; needs NVRTC, not a GPU."""
    nvrtc = nvrtc_or_skip()
    program = nvrtc.createProgram(cuda_kernels.load_source(f"cuda/{cu.name}"), cu.name, (), ())
    try:
        try:
            nvrtc.compileProgram(program, cuda_kernels.NVRTC_OPTIONS + ("-arch=compute_75",))
        except nvrtc.NVRTCError:
            pytest.fail(f"NVRTC rejected {cu.name}:\n{nvrtc.getProgramLog(program)}")
        ptx = nvrtc.getPTX(program)
    finally:
        nvrtc.destroyProgram(program)
    ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
    assert sorted(re.findall(r"\.entry (\w+)", ptx)) == \
        sorted(cuda_kernels.family_signatures(cu.stem))


def test_launcher_limits_agree_with_portable_header():
    text = (CSRC / "nnlite" / "portable.cuh").read_text()
    threads = int(re.search(r"#define NNL_MAX_THREADS_PER_BLOCK (\d+)", text).group(1))
    shared = eval(re.search(r"#define NNL_MAX_SHARED_BYTES \(([\d *]+)\)", text).group(1))
    assert (threads, shared) == (cuda_kernels.MAX_THREADS_PER_BLOCK,
                                 cuda_kernels.MAX_SHARED_BYTES)
    grid_threads = int(re.search(r"#define NNL_GRID_THREADS (\d+)", text).group(1))
    grid_blocks = int(re.search(r"#define NNL_MAX_GRID_BLOCKS (\d+)", text).group(1))
    assert (grid_threads, grid_blocks) == (cuda_kernels.GRID_THREADS,
                                           cuda_kernels.MAX_GRID_BLOCKS)


def test_every_cuda_source_is_a_family():
    assert sorted(cu.stem for cu in (CSRC / "cuda").glob("*.cu")) == \
        sorted(cuda_kernels.FAMILIES)


@pytest.mark.parametrize("cols", [0, 1, 31, 32, 33, 63, 1000, 1024, 5000, 10**6])
@pytest.mark.parametrize("itemsize", [4, 8])
def test_block_per_row_launch_is_power_of_two_within_limits(cols, itemsize):
    from nnlite.kernels.launch import Blocks
    blocks, threads, shared = cuda_kernels.launch_shape(Blocks(7, cols, 1), itemsize)
    assert blocks == 7
    assert threads & (threads - 1) == 0 and 32 <= threads <= cuda_kernels.MAX_THREADS_PER_BLOCK
    assert threads >= min(cols, cuda_kernels.MAX_THREADS_PER_BLOCK)
    assert shared == threads * itemsize <= cuda_kernels.MAX_SHARED_BYTES


# ---------------------------------------------------- host build of .cuh --

def test_headers_are_in_the_host_build():
    from nnlite import _C
    assert hasattr(_C, "softmax_forward_f32"), f"{_C.__file__} lacks the softmax family"


@needs_gxx
@pytest.mark.parametrize("header", HEADERS, **by_name)
@pytest.mark.parametrize("std", ["c++03", "c++11"])
def test_header_compiles_with_host_compiler(header, std, tmp_path):
    unit = tmp_path / "unit.cpp"
    unit.write_text(f'#include "nnlite/{header.name}"\nint main() {{ return 0; }}\n')
    run(["g++", f"-std={std}", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", f"-I{CSRC}",
         str(unit)])


@needs_gxx
def test_portable_log_add_exp_on_host(tmp_path):
    unit = tmp_path / "lae.cpp"
    unit.write_text('#include "nnlite/portable.cuh"\n#include <cstdio>\nint main() {\n'
                    '  const double inf = __builtin_inf();\n'
                    '  std::printf("%.17g %.17g %.17g %.17g\\n", nnl_log_add_exp(0.0, 0.0),\n'
                    '              nnl_log_add_exp(-inf, 2.0), nnl_log_add_exp(-inf, -inf),\n'
                    '              (double)nnl_log_add_exp(1000.0f, 999.0f));\n}\n')
    run(["g++", "-std=c++11", f"-I{CSRC}", str(unit), "-o", str(tmp_path / "lae")])
    values = [float(v) for v in run([str(tmp_path / "lae")]).split()]
    import numpy as np
    expected = [np.logaddexp(0, 0), 2.0, -np.inf, np.logaddexp(np.float32(1000), np.float32(999))]
    np.testing.assert_allclose(values, expected, rtol=1e-6)


# ------------------------------------------------------------------- lint --

def strip_comments(text):
    """Blank out comments and the insides of string literals, keeping line numbers:
    what they say is not code."""
    def blank(match):
        token = match.group(0)
        if token[0] in "\"'":
            return token[0] + " " * (len(token) - 2) + token[-1]
        return re.sub(r"[^\n]", " ", token)
    return re.sub(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*.*?\*/', blank, text,
                  flags=re.S)


# (rule, regex, which files: None = all linted files, or a predicate on the path)
LINT_RULES = [
    ("auto (C++11 type deduction)", r"\bauto\b", None),
    ("nullptr", r"\bnullptr\b", None),
    ("constexpr", r"\bconstexpr\b", None),
    ("static_assert", r"\bstatic_assert\b", None),
    ("standard header (NVRTC has none)", r"^[ \t]*#[ \t]*include[ \t]*<", None),
    ("cooperative groups", r"\bcooperative_groups\b", None),
    # Plain `half` only exists through cuda_fp16.h, which the include rule
    # already catches, so the name stays usable for ordinary variables.
    ("half precision", r"\b__half2?\b|\bhalf2\b|\b__nv_bfloat16\w*|cuda_(?:fp16|bf16)"
                       r"|\b__(?:float2half|half2float)\w*|\b__h(?:add|sub|mul|div|fma|neg)2?\b",
     None),
    ("managed memory", r"\bcudaMallocManaged\b|\b__managed__\b", None),
    ("dynamic parallelism (a launch in device code)", r"<<<", None),
    ("double-precision atomicAdd", r"\batomicAdd\s*\([^;]*\b(?:double|scalar_t)\b", None),
    ("warp intrinsic outside portable.cuh",
     r"\b__(?:shfl|ballot|activemask|syncwarp|match_any|match_all)\w*",
     lambda path: path.name != "portable.cuh"),
    ("__CUDA_ARCH__ in code the host build compiles", r"\b__CUDA_ARCH__\b",
     lambda path: path.parent.name == "nnlite"),
]
LAMBDA = re.compile(r"\[[^\[\]]*\]\s*(?:\([^()]*\)\s*)?(?:mutable\s*)?\{")


def lint(path, text=None):
    """['path:line: rule', ...] for every forbidden construct in one file."""
    code = strip_comments(path.read_text() if text is None else text)
    problems = []
    for rule, pattern, applies in LINT_RULES:
        if applies is None or applies(path):
            for match in re.finditer(pattern, code, flags=re.M):
                problems.append((match.start(), rule))
    for match in LAMBDA.finditer(code):
        before = code[:match.start()].rstrip()
        # A subscript follows a name, ']' or ')'; a lambda introducer does not.
        if not before or not (before[-1].isalnum() or before[-1] in "_])"):
            problems.append((match.start(), "lambda"))
    return [f"{path.name}:{code.count(chr(10), 0, pos) + 1}: {rule}" for pos, rule in problems]


@pytest.mark.parametrize("path", LINTED, **by_name)
def test_kernel_sources_pass_the_lint(path):
    assert lint(path) == []


BAD_SNIPPETS = {
    "auto (C++11 type deduction)": "auto n = 3;",
    "nullptr": "float* p = nullptr;",
    "constexpr": "constexpr int k = 2;",
    "static_assert": "static_assert(sizeof(int) == 4, \"\");",
    "standard header (NVRTC has none)": "#include <cmath>",
    "cooperative groups": "namespace cg = cooperative_groups;",
    "half precision": "__half h = __float2half(1.0f);",
    "managed memory": "__managed__ float counter;",
    "dynamic parallelism (a launch in device code)": "child<<<1, 32>>>(p);",
    "double-precision atomicAdd": "atomicAdd((double*)p, 1.0);",
    "warp intrinsic outside portable.cuh": "v += __shfl_down_sync(0xffffffff, v, 1);",
    "__CUDA_ARCH__ in code the host build compiles": "#if __CUDA_ARCH__ >= 350\n#endif",
    "lambda": "int r = [&](int a) { return a; }(1);",
}


def test_every_rule_has_a_planted_snippet():
    assert set(BAD_SNIPPETS) == {rule for rule, _, _ in LINT_RULES} | {"lambda"}


@pytest.mark.parametrize("rule", sorted(BAD_SNIPPETS))
def test_lint_catches_planted_snippet(rule, tmp_path):
    planted = tmp_path / "nnlite" / "planted.cuh"
    planted.parent.mkdir()
    planted.write_text("// a planted violation\nint x;\n" + BAD_SNIPPETS[rule] + "\n")
    assert f"planted.cuh:3: {rule}" in lint(planted)


def test_lint_ignores_comments_strings_and_subscripts(tmp_path):
    clean = tmp_path / "nnlite" / "clean.cuh"
    clean.parent.mkdir()
    clean.write_text('// nullptr, auto, #include <cmath>, [&](){}\n'
                     '/* constexpr\n   __shfl_sync */\n'
                     'const char* s = "auto nullptr";\n'
                     'int half = n / 2; y[j] = x[i] { 0 };\n'
                     'extern "C" __global__ void k(float* p) { p[0] = buf[1]; }\n')
    assert lint(clean) == []
