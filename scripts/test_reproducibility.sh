#!/usr/bin/env bash
# The reproducibility-sensitive tests (pytest marker `reproducibility`: results of training and
# sampling checked against expectations that must hold on any CPU) again, once with one thread
# (OMP_NUM_THREADS=1) and once on a lower kernel set than the machine's
# (ATEN_CPU_CAPABILITY=avx2). scripts/test.sh runs this after the main run. Arguments go to
# pytest instead of the default `tests` (e.g. one file). Fails when a run fails, and when no test
# is selected (pytest's exit status 5): a variant run that checks nothing proves nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
if [ "$#" -eq 0 ]; then set -- tests; fi
status=0
for variant in OMP_NUM_THREADS=1 ATEN_CPU_CAPABILITY=avx2; do
    kernels=$(env "$variant" "$PYTHON" -c "import torch; print(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads())")
    echo "== reproducibility tests with $variant (torch kernels, threads: $kernels) =="
    env "$variant" "$PYTHON" -m pytest -p no:cacheprovider -q -m reproducibility "$@"
    rc=$?
    if [ "$rc" -eq 5 ]; then
        echo "error: no test marked 'reproducibility' was selected with $variant (pytest exit status 5);" \
            "mark the reproducibility-sensitive tests with @pytest.mark.reproducibility" >&2
        status=1
    elif [ "$rc" -ne 0 ]; then
        echo "error: the reproducibility tests failed with $variant (pytest exit status $rc)" >&2
        status=1
    fi
done
exit "$status"
