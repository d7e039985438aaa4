#!/usr/bin/env python3
"""CodeScout sandbox terminal server (runs inside the sandbox container, stdlib only).

Owns one interactive bash in a pseudo-terminal and answers terminal calls as JSON lines on
stdin/stdout. It reproduces what the model saw during training: OpenHands' tmux terminal
(1000x1000 pane, 10,000-line history, `capture-pane -J -pS -`, lines right-stripped) driven by
its terminal_session logic (PS1 blocks, soft/hard timeouts, "previous output" bookkeeping).
Instead of tmux we keep a small line-based screen model fed by the pty, and instead of a
JSON PS1 we print a compact marker from PROMPT_COMMAND carrying a per-session nonce.

The host does the text formatting of observations; this process returns structured results.
Everything here runs as the unprivileged sandbox user, so the host treats it as untrusted.
"""

import base64
import codecs
import collections
import errno
import fcntl
import json
import os
import re
import select
import selectors
import signal
import struct
import subprocess
import sys
import termios
import threading
import time

COLS = 1000
SCREEN_ROWS = 1000
HISTORY_LIMIT = 10_000
# tmux drops a tenth of the history at once when it is full (grid_collect_history).
HISTORY_TRIM = HISTORY_LIMIT // 10
MAX_ROWS = HISTORY_LIMIT + SCREEN_ROWS
# Rows the reference's JSON PS1 block occupies ("###PS1JSON###", 8 JSON lines, "###PS1END###").
PROMPT_ROWS = 10

OUTPUT_KEEP = int(os.environ.get("CS_OUTPUT_KEEP", "40000"))
FLOOD_BYTES = int(os.environ.get("CS_FLOOD_BYTES", str(64 * 1024 * 1024)))
MAX_LIFETIME_S = float(os.environ.get("CS_MAX_LIFETIME_S", "0") or 0)
MAX_INPUT_LINE = 4 * 1024 * 1024
TICK_S = 0.1

RUNNING = ("soft_timeout", "hard_timeout")


SEND_LOCK = threading.Lock()


def send(msg):
    line = json.dumps(msg, ensure_ascii=True) + "\n"
    # Exec threads answer beside the main loop: one line at a time on the stream.
    with SEND_LOCK:
        sys.stdout.write(line)
        sys.stdout.flush()


class Marker:
    """A prompt seen in the output: where the reference's PS1 JSON block would be."""

    __slots__ = ("exit_code", "cwd", "python")
    rows = PROMPT_ROWS

    def __init__(self, exit_code, cwd, python):
        self.exit_code = exit_code
        self.cwd = cwd
        self.python = python


def rows_of(length):
    return max(1, -(-length // COLS))


def row_start(col):
    return 0 if col <= 0 else ((col - 1) // COLS) * COLS


class Screen:
    """The pane as `capture-pane -J -pS -` would show it: joined lines, history-capped."""

    # One escape/control token; anything else is printable text.
    TOKEN = re.compile(
        r"\x1b\[[0-?]*[ -/]*[@-~]"
        r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
        r"|\x1b[P_^X][^\x1b]*\x1b\\"
        r"|\x1b[()*+\-./#%][ -~]"
        r"|\x1b[ -~]"
        r"|[\x00-\x1f\x7f\x80-\x9f]"
    )
    INCOMPLETE = re.compile(
        r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[P_^X][^\x1b]*\x1b?|[()*+\-./#%])?\Z"
    )
    CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\x80-\x9f]")

    def __init__(self):
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        self.pending = ""
        self.clear(None)

    def clear(self, marker):
        """What C-l + clear-history leaves: a blank row, the prompt, an empty command line."""
        self.items = collections.deque()
        self.rows = 0
        self.version = 0
        self.trimmed = False
        self._push("")
        if marker is not None:
            self._push(marker)
        self.cur = []
        self.cur_len = 0
        self.col = 0

    # -- bookkeeping -------------------------------------------------------------------
    def _push(self, item):
        self.items.append(item)
        self.rows += item.rows if isinstance(item, Marker) else rows_of(len(item))

    def _cur_text(self):
        if len(self.cur) != 1:
            self.cur = ["".join(self.cur)]
        return self.cur[0]

    def _enforce_limit(self):
        while self.rows + rows_of(self.cur_len) > MAX_ROWS:
            self._trim(HISTORY_TRIM)

    def _trim(self, n):
        self.trimmed = True
        while n > 0 and self.items:
            item = self.items[0]
            r = item.rows if isinstance(item, Marker) else rows_of(len(item))
            if r <= n or isinstance(item, Marker):
                self.items.popleft()
                self.rows -= r
                n -= r
            else:
                cut = item[n * COLS:]
                self.items[0] = cut
                self.rows -= r - rows_of(len(cut))
                n = 0
        if n > 0:
            # A single line longer than the whole history: keep its tail.
            text = self._cur_text()[n * COLS:]
            self.col = max(0, self.col - n * COLS)
            self.cur = [text]
            self.cur_len = len(text)

    # -- feeding -----------------------------------------------------------------------
    def feed(self, data):
        text = self.pending + self.decoder.decode(data)
        self.pending = ""
        if not text:
            return
        self.version += 1
        text = text.replace("\r\n", "\n")
        esc = text.rfind("\x1b")
        if esc != -1 and len(text) - esc < 4096 and self.INCOMPLETE.match(text, esc):
            # An escape sequence cut by the read boundary: finish it with the next read.
            self.pending = text[esc:]
            text = text[:esc]
        if not self.CONTROL.search(text) and "\x1b" not in text:
            self._write_plain(text)
        else:
            pos = 0
            for m in self.TOKEN.finditer(text):
                if m.start() > pos:
                    self._write_plain(text[pos:m.start()])
                self._control(m.group())
                pos = m.end()
            if pos < len(text):
                self._write_plain(text[pos:])
        self._enforce_limit()

    def _write_plain(self, text):
        if "\n" not in text:
            self._write(text)
            return
        pieces = text.split("\n")
        self._write(pieces[0])
        self._newline()
        middle = pieces[1:-1]
        if middle:
            if max(map(len, middle)) <= COLS:
                self.items.extend(middle)
                self.rows += len(middle)
            else:
                for p in middle:
                    self._push(p)
            self._enforce_limit()
        last = pieces[-1]
        if last:
            self._write(last)

    def _write(self, s):
        if not s:
            return
        if self.col == self.cur_len:
            self.cur.append(s)
            self.cur_len += len(s)
            self.col = self.cur_len
        else:
            t = self._cur_text()
            if self.col > len(t):
                t += " " * (self.col - len(t))
            t = t[:self.col] + s + t[self.col + len(s):]
            self.cur = [t]
            self.cur_len = len(t)
            self.col += len(s)
        if self.cur_len > MAX_ROWS * COLS:
            self._enforce_limit()

    def _newline(self):
        self._push(self._cur_text() if self.cur else "")
        self.cur = []
        self.cur_len = 0
        self.col = 0

    def _control(self, tok):
        c = tok[0]
        if c == "\n":
            self._newline()
        elif c == "\r":
            self.col = row_start(self.col)
        elif c == "\t":
            self.col = (self.col // 8 + 1) * 8
        elif c == "\b":
            self.col = max(row_start(self.col), self.col - 1)
        elif c == "\x1b" and len(tok) > 2 and tok[1] == "[":
            final = tok[-1]
            params = tok[2:-1]
            try:
                n = int(params) if params.isdigit() else 0
            except ValueError:
                n = 0
            if final == "K":
                t = self._cur_text() if self.cur else ""
                if n == 0:
                    t = t[:self.col]
                elif n == 1:
                    t = " " * min(self.col + 1, len(t)) + t[self.col + 1:]
                else:
                    t = t[:row_start(self.col)]
                self.cur = [t]
                self.cur_len = len(t)
            elif final == "C":
                self.col += max(1, n)
            elif final == "D":
                self.col = max(row_start(self.col), self.col - max(1, n))
            elif final == "G":
                self.col = row_start(self.col) + max(1, n) - 1

    def marker(self, m):
        """A prompt: the reference's PS1 starts with a newline and ends with one."""
        self._newline()
        self._push(m)
        self._enforce_limit()
        self.version += 1

    # -- reading like the reference ----------------------------------------------------
    def content(self):
        """Lines (str, right-stripped) and Markers; trailing empty lines dropped like libtmux."""
        out = [i if isinstance(i, Marker) else i.rstrip() for i in self.items]
        out.append(self._cur_text().rstrip() if self.cur else "")
        while out and isinstance(out[-1], str) and out[-1] == "":
            out.pop()
        return out

    @staticmethod
    def markers(content):
        return [i for i, x in enumerate(content) if isinstance(x, Marker)]

    @staticmethod
    def ends_with_prompt(content):
        return bool(content) and isinstance(content[-1], Marker)

    @staticmethod
    def fingerprint(content):
        return hash(tuple(x if isinstance(x, str) else id(x) for x in content))


def combine(content, idx, before_last=False):
    """terminal_session._combine_outputs_between_matches over our content model."""
    if len(idx) == 1:
        if before_last:
            return "".join(line + "\n" for line in content[:idx[0]])
        return "\n".join(content[idx[0] + 1:])
    if not idx:
        return "\n".join(content)
    out = []
    for a, b in zip(idx, idx[1:]):
        out.append("".join(line + "\n" for line in content[a + 1:b]) + "\n")
    out.append("\n".join(content[idx[-1] + 1:]))
    return "".join(out)


class Shell:
    def __init__(self, workdir, nonce):
        self.workdir = workdir
        self.nonce = nonce
        self.start_tag = b"\x1e" + nonce + b"B"
        self.end_tag = b"\x1e" + nonce + b"E"
        self.raw = b""
        self.pid, self.fd = self._spawn()
        self.outq = b""
        self.dead = False
        self.exit_status = None

    def _spawn(self):
        # The whole setup travels in the environment (bash cannot source a pipe, and the
        # root filesystem is read-only): PS1/PS2 empty, the marker printed by an exported
        # PROMPT_COMMAND, as the reference exported its PS1-setting PROMPT_COMMAND.
        # bash keeps $? across PROMPT_COMMAND, so "$?" there is the command's status.
        # `command -v` prints the interpreter straight into the marker: capturing it with
        # $(...) would fork a subshell at every prompt, a few ms on a VM (most of a call's cost).
        prompt_command = (
            "printf '\\036%sB%s\\037%s\\037' \"$__cs_n\" \"$?\" \"$PWD\"; "
            "command -v python; printf '\\036%sE' \"$__cs_n\""
        )
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": os.environ.get("HOME", "/tmp/home"),
            "TERM": "tmux-256color",
            "LANG": "C.UTF-8",
            "SHELL": "/bin/bash",
            "USER": os.environ.get("USER", "agent"),
            "LOGNAME": os.environ.get("USER", "agent"),
            "PS1": "",
            "PS2": "",
            "PROMPT_COMMAND": prompt_command,
            "__cs_n": self.nonce.decode(),
        }
        pid, fd = os.forkpty()
        if pid == 0:
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", SCREEN_ROWS, COLS, 0, 0))
                os.chdir(self.workdir)
                # +H: no history expansion, so "!" in commands is taken literally (reference: set +H).
                os.execve("/bin/bash", ["bash", "--noprofile", "--norc", "+H", "-i"], env)
            finally:
                os._exit(127)
        fl = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        return pid, fd

    def write(self, data):
        self.outq += data
        self.flush()

    def flush(self):
        while self.outq and not self.dead:
            try:
                n = os.write(self.fd, self.outq[:4096])
            except BlockingIOError:
                return
            except OSError:
                self.outq = b""
                return
            self.outq = self.outq[n:]

    def read(self):
        """Returns a list of bytes chunks and Marker objects, in order."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        if not data:
            self.dead = True
            return []
        return self.scan(data)

    def scan(self, data):
        buf = self.raw + data
        self.raw = b""
        out = []
        while buf:
            i = buf.find(self.start_tag)
            if i == -1:
                keep = len(self.start_tag) - 1
                # Hold back a possible partial tag at the end.
                for k in range(min(keep, len(buf)), 0, -1):
                    if self.start_tag.startswith(buf[-k:]):
                        out.append(buf[:-k])
                        self.raw = buf[-k:]
                        break
                else:
                    out.append(buf)
                break
            if i:
                out.append(buf[:i])
            j = buf.find(self.end_tag, i)
            if j == -1:
                if len(buf) - i > 65536:
                    out.append(buf[i:])  # not a real marker; let it render
                else:
                    self.raw = buf[i:]
                break
            body = buf[i + len(self.start_tag):j].decode("utf-8", "replace")
            buf = buf[j + len(self.end_tag):]
            code, _, rest = body.partition("\x1f")
            cwd, _, python = rest.rpartition("\x1f")
            python = python.strip()
            try:
                exit_code = int(float(code))
            except ValueError:
                exit_code = -1
            out.append(Marker(exit_code, cwd, python))
        return [x for x in out if not isinstance(x, bytes) or x]

    def kill(self):
        for sig in (signal.SIGHUP, signal.SIGKILL):
            try:
                os.killpg(self.pid, sig)
            except OSError:
                pass
        try:
            os.close(self.fd)
        except OSError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        self.dead = True

    def reap(self):
        if self.exit_status is not None:
            return True
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.exit_status = 0
            return True
        if pid == 0:
            return False
        self.exit_status = os.waitstatus_to_exitcode(status)
        if self.exit_status < 0:
            self.exit_status = 128 - self.exit_status
        return True


def cap_output(text):
    if len(text) <= 2 * OUTPUT_KEEP:
        return {"output": text}
    return {
        "output": text[:OUTPUT_KEEP],
        "output_tail": text[-OUTPUT_KEEP:],
        "output_omitted": len(text) - 2 * OUTPUT_KEEP,
    }


def special_key(command):
    c = command.strip()
    return c.startswith("C-") and len(c) == 3


class Session:
    def __init__(self, workdir):
        self.workdir = workdir
        self.nonce = os.urandom(12).hex().encode()
        self.screen = Screen()
        self.shell = None
        self.prev_status = None
        self.prev_output = ""
        self.call = None
        self.last_marker = None

    # -- shell lifecycle ---------------------------------------------------------------
    def start_shell(self, deadline=10.0):
        self.shell = Shell(self.workdir, self.nonce)
        self.screen = Screen()
        self.prev_status = None
        self.prev_output = ""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            r, _, _ = select.select([self.shell.fd], [], [], max(0.0, end - time.monotonic()))
            if not r:
                continue
            for item in self.shell.read():
                if isinstance(item, Marker):
                    self.last_marker = item
                    self.screen.clear(item)
                    return item
            if self.shell.dead:
                break
        raise RuntimeError("bash did not print its first prompt")

    def restart_shell(self):
        if self.shell is not None:
            self.shell.kill()
        return self.start_shell()

    # -- the reference's output bookkeeping ----------------------------------------------
    def command_output(self, command, raw):
        continued = bool(self.prev_output)
        out = raw.removeprefix(self.prev_output) if continued else raw
        self.prev_output = raw
        out = out.lstrip().removeprefix(command.lstrip()).lstrip()
        return out.rstrip(), continued

    def pump(self):
        """Reads what the pty has; returns True when a prompt arrived."""
        marker = False
        for item in self.shell.read():
            if self.call is not None:
                self.call["heard"] = True
            if isinstance(item, Marker):
                self.last_marker = item
                self.screen.marker(item)
                marker = True
            else:
                self.screen.feed(item)
                if self.call is not None:
                    self.call["bytes"] += len(item)
        return marker

    def await_readline(self, limit=1.0):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            try:
                if not termios.tcgetattr(self.shell.fd)[3] & termios.ECHO:
                    return
            except termios.error:
                return
            r, _, _ = select.select([self.shell.fd], [], [], 0.002)
            if r:
                self.pump()
                if self.shell.dead:
                    return

    # -- calls -------------------------------------------------------------------------
    def begin(self, msg):
        cid = msg["id"]
        command = str(msg.get("command", "")).strip()
        is_input = bool(msg.get("is_input", False))
        timeout = msg.get("timeout")
        soft = float(msg.get("soft_timeout", 30))
        if self.prev_status not in RUNNING:
            if command == "":
                return self.reply(cid, kind="no_running_command", reason="empty")
            if is_input:
                return self.reply(cid, kind="no_running_command", reason="input")
        content = self.screen.content()
        idx = Screen.markers(content)
        if (
            self.prev_status in RUNNING
            and not Screen.ends_with_prompt(content)
            and not is_input
            and command != ""
        ):
            raw = combine(content, idx)
            out, continued = self.command_output(command, raw)
            return self.reply(cid, kind="busy", continued=continued, **cap_output(out))
        if command != "" and not is_input and not special_key(command):
            # Typed before readline takes the tty (bash may still be in PROMPT_COMMAND),
            # a command is echoed twice: once by the kernel, once by readline.
            self.await_readline()
            content = self.screen.content()
            idx = Screen.markers(content)
        sent = False
        if command != "":
            if special_key(command):
                key = command.strip()[-1].lower()
                code = ord(key) & 0x1F if key.isalpha() or key in "@[\\]^_" else None
                if code is not None:
                    self.shell.write(bytes([code]))
            else:
                self.shell.write(command.encode("utf-8", "replace") + b"\r")
            sent = True
        now = time.monotonic()
        self.call = {
            "id": cid,
            "command": command,
            "timeout": None if timeout is None else float(timeout),
            "soft": soft,
            "start": now,
            "last_change": now,
            "initial_count": len(idx),
            "fingerprint": Screen.fingerprint(content),
            "version": self.screen.version,
            "bytes": 0,
            "heard": not sent,
        }
        self.check(tick=True)

    def check(self, tick=False):
        call = self.call
        if call is None:
            return
        content = self.screen.content()
        idx = Screen.markers(content)
        now = time.monotonic()
        if call["heard"] and (len(idx) > call["initial_count"] or Screen.ends_with_prompt(content)):
            return self.completed(content, idx)
        if not tick:
            return
        if self.screen.version != call["version"]:
            call["version"] = self.screen.version
            # Past the flood limit, more output no longer counts as progress: the
            # reference would compare whole screens that keep shifting forever.
            if call["bytes"] <= FLOOD_BYTES:
                fp = Screen.fingerprint(content)
                if fp != call["fingerprint"]:
                    call["fingerprint"] = fp
                    call["last_change"] = now
        if call["timeout"] is None and now - call["last_change"] >= call["soft"]:
            return self.timed_out(content, idx, "soft_timeout")
        if call["timeout"] is not None and now - call["start"] >= call["timeout"]:
            return self.timed_out(content, idx, "hard_timeout")

    def completed(self, content, idx):
        call = self.call
        self.call = None
        marker = content[idx[-1]]
        before_last = len(idx) == 1
        raw = combine(content, idx, before_last=before_last)
        history_lines = len(raw.splitlines()) if before_last else None
        out, continued = self.command_output(call["command"], raw)
        self.prev_status = "completed"
        self.prev_output = ""
        self.screen.clear(marker)
        self.reply(
            call["id"],
            kind="completed",
            continued=continued,
            history_lines=history_lines,
            exit_code=marker.exit_code,
            cwd=marker.cwd,
            python=marker.python,
            special_key=special_key(call["command"]),
            **cap_output(out),
        )

    def timed_out(self, content, idx, kind):
        call = self.call
        self.call = None
        self.prev_status = kind
        raw = combine(content, idx)
        out, continued = self.command_output(call["command"], raw)
        self.reply(call["id"], kind=kind, continued=continued, **cap_output(out))

    def cancel(self, cid):
        call = self.call
        if call is None or call["id"] != cid:
            return
        content = self.screen.content()
        self.timed_out(content, Screen.markers(content), "hard_timeout")

    def shell_died(self):
        """`exit` or a killed shell: answer the call, then start a fresh shell."""
        call = self.call
        self.call = None
        content = self.screen.content()
        raw = combine(content, Screen.markers(content))
        out, continued = self.command_output(call["command"] if call else "", raw)
        # The pty can report end of file a moment before the kernel has the shell's exit
        # status ready; waiting briefly keeps `exit 3` from reading as -1.
        deadline = time.monotonic() + 2.0
        while not self.shell.reap() and time.monotonic() < deadline:
            time.sleep(0.005)
        status = self.shell.exit_status if self.shell.exit_status is not None else -1
        self.shell.kill()
        marker = self.start_shell()
        if call is not None:
            self.reply(
                call["id"],
                kind="shell_exited",
                continued=continued,
                exit_code=status,
                cwd=marker.cwd,
                python=marker.python,
                **cap_output(out),
            )

    def reply(self, cid, **fields):
        send({"type": "result", "id": cid, "running": self.prev_status in RUNNING, **fields})


# Output of an exec travels base64-encoded in lines of at most this many raw bytes.
EXEC_CHUNK = 48 * 1024
# Once killed, how long an exec's pipes may stay open (a child that left the group) before
# the answer goes without the rest.
EXEC_GRACE_S = 1.0


def exec_data(cid, fd, chunk):
    send({"type": "exec_data", "id": cid, "fd": fd, "b64": base64.b64encode(chunk).decode()})


def exec_done(cid, code, timed_out=False, truncated=False, unstarted=False):
    msg = {"type": "exec_done", "id": cid, "exit_code": code, "timed_out": timed_out, "truncated": truncated}
    # Only said when true, as the host's schema allows it to be absent.
    if unstarted:
        msg["unstarted"] = True
    send(msg)


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


def exec_thread(msg, workdir):
    try:
        run_exec(msg, workdir)
    except Exception as e:  # a malformed request: answered, never left hanging
        err = f"exec: {type(e).__name__}: {e}\n".encode()[:4096]
        exec_data(msg.get("id", -1), 2, err)
        exec_done(msg.get("id", -1), 125)


def run_exec(msg, workdir):
    """A one-off process beside the shell, started here rather than by the engine (a
    `docker exec` costs ~100 ms of the engine's CPU; a fork here, a few ms). Its own process
    group, killed whole at the deadline; output streamed to the host in chunks, each stream
    cut at the byte cap; the host caps and validates it again."""
    cid = msg["id"]
    deadline = time.monotonic() + float(msg["timeout"])
    cap = int(msg["max_bytes"])
    data = memoryview(base64.b64decode(msg["stdin"])) if msg.get("stdin") is not None else None
    try:
        proc = subprocess.Popen(
            [str(a) for a in msg["argv"]],
            cwd=workdir,
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.ENOMEM):
            # The sandbox's process limit is reached (a fork bomb): the host asks the engine,
            # whose exec the kernel lets join even a full group.
            exec_done(cid, -1, unstarted=True)
            return
        # What coreutils `timeout` says and returns when it cannot run the command.
        err = f"exec: failed to run command {msg['argv'][0]!r}: {e.strerror}\n".encode()
        exec_data(cid, 2, err[:cap])
        exec_done(cid, 126 if isinstance(e, PermissionError) else 127)
        return
    sel = selectors.DefaultSelector()
    sent = {1: 0, 2: 0}
    truncated = False
    for fd_no, pipe in ((1, proc.stdout), (2, proc.stderr)):
        os.set_blocking(pipe.fileno(), False)
        sel.register(pipe, selectors.EVENT_READ, fd_no)
    if data is not None:
        os.set_blocking(proc.stdin.fileno(), False)
        if data:
            sel.register(proc.stdin, selectors.EVENT_WRITE, 0)
        else:
            proc.stdin.close()
    timed_out = False
    killed_at = None
    while sel.get_map():
        now = time.monotonic()
        if not timed_out and now >= deadline:
            timed_out = True
            killed_at = now
            kill_group(proc)
        if killed_at is not None and now - killed_at > EXEC_GRACE_S:
            break
        wait = (deadline - now) if not timed_out else EXEC_GRACE_S
        for key, _ in sel.select(max(0.0, min(wait, 1.0))):
            if key.data == 0:
                try:
                    n = os.write(key.fileobj.fileno(), data[:65536])
                except BlockingIOError:
                    n = 0
                except OSError:  # the process closed its input: the rest is not wanted
                    n = len(data)
                data = data[n:]
                if not data:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
                continue
            try:
                chunk = os.read(key.fileobj.fileno(), EXEC_CHUNK)
            except BlockingIOError:
                continue
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            room = cap - sent[key.data]
            if len(chunk) > room:
                truncated = True
                chunk = chunk[: max(0, room)]
            if chunk:
                sent[key.data] += len(chunk)
                exec_data(cid, key.data, chunk)
    sel.close()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass
    try:
        code = proc.wait(timeout=EXEC_GRACE_S)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        code = proc.wait()
    # A signal reads as the shell would report it (SIGKILL: 137), as under coreutils `timeout`.
    exec_done(cid, 128 - code if code < 0 else code, timed_out, truncated)


def main():
    workdir = os.environ.get("CS_WORKDIR") or os.getcwd()
    home = os.environ.get("HOME", "/tmp/home")
    try:
        os.makedirs(home, exist_ok=True)
    except OSError:
        pass
    born = time.monotonic()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    session = Session(workdir)
    stdin = sys.stdin.buffer.raw
    inbuf = b""
    started = False
    next_tick = 0.0

    while True:
        if MAX_LIFETIME_S and time.monotonic() - born > MAX_LIFETIME_S:
            send({"type": "fatal", "message": "sandbox lifetime exceeded"})
            return 3
        rlist = [stdin]
        wlist = []
        if started:
            rlist.append(session.shell.fd)
            if session.shell.outq:
                wlist.append(session.shell.fd)
        timeout = TICK_S if session.call is not None else 1.0
        r, w, _ = select.select(rlist, wlist, [], timeout)
        if wlist and w:
            session.shell.flush()
        if started and session.shell.fd in r:
            prompted = session.pump()
            if session.shell.dead:
                session.shell_died()
                continue
            if prompted:
                session.check()
        if stdin in r:
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:
                return 0  # the host went away: nothing is left to serve
            inbuf += chunk
            if len(inbuf) > MAX_INPUT_LINE and b"\n" not in inbuf:
                send({"type": "fatal", "message": "input line too long"})
                return 2
            msgs = []
            while b"\n" in inbuf:
                line, inbuf = inbuf.split(b"\n", 1)
                if not line.strip():
                    continue
                try:
                    msg = json.loads(line)
                    msg["op"]
                except (ValueError, KeyError, TypeError):
                    send({"type": "fatal", "message": "bad request line"})
                    continue
                if msg["op"] == "exec":
                    # At once, not behind a shell's start read in the same chunk.
                    try:
                        threading.Thread(target=exec_thread, args=(msg, session.workdir), daemon=True).start()
                    except RuntimeError:  # no thread to be had: the process limit again
                        exec_done(msg.get("id", -1), -1, unstarted=True)
                else:
                    msgs.append(msg)
            for msg in msgs:
                op = msg["op"]
                if op == "start":
                    marker = session.start_shell()
                    started = True
                    send({"type": "ready", "cwd": marker.cwd, "python": marker.python, "pid": session.shell.pid})
                elif op == "run" and started:
                    if session.call is not None:
                        session.reply(msg["id"], kind="protocol_error", message="a call is already in progress")
                    else:
                        session.begin(msg)
                elif op == "cancel" and started:
                    session.cancel(msg.get("id"))
                elif op == "reset" and started:
                    if session.call is not None:
                        session.cancel(session.call["id"])
                    marker = session.restart_shell()
                    session.reply(msg["id"], kind="reset", cwd=marker.cwd, python=marker.python)
                else:
                    send({"type": "fatal", "message": f"unexpected op {op!r}"})
        if session.call is not None and time.monotonic() >= next_tick:
            next_tick = time.monotonic() + TICK_S
            session.check(tick=True)
        if started and session.shell.reap() and session.call is None and not session.shell.dead:
            # The shell exited between calls (e.g. killed from a background job).
            session.shell.dead = True
            session.shell_died()


if __name__ == "__main__":
    sys.exit(main())
