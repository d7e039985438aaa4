/**
 * Python, for the scripts that parse the repository's files inside the sandbox (the baseline's
 * outline, the location check): a cap on the script's own memory, three quarters of the
 * sandbox's. ast.parse takes hundreds of times a file's size on some shapes (2 MB of "a,a,..."
 * took 1.4 GB); past the sandbox's memory the kernel kills the whole script, and every file's
 * answer is lost. Under the cap the parse raises MemoryError, and only that file is read
 * otherwise. (Written without backslashes: it goes into raw and plain template strings alike.)
 */
export const MEMORY_CAP = `
import resource


def _cap_memory():
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                limit = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        # cgroup v1 says "no limit" with a number near 2**63.
        if limit < 1 << 44:
            resource.setrlimit(resource.RLIMIT_AS, (limit * 3 // 4, limit * 3 // 4))
        return


_cap_memory()
`;
