"""Drive a command on a terminal like a person would: type, press Ctrl-C and Ctrl-Z,
resize the window, then check the terminal's mode came back. argv: the command.
Every wait is for output the command produces, never for time alone."""
import fcntl, os, pty, select, struct, sys, termios, time

def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))

pid, fd = pty.fork()
if pid == 0:
    set_size(0, 30, 90)
    os.execvp(sys.argv[1], sys.argv[1:])

buf = b''
def expect(marker, timeout=20):
    """Read until `marker` has been output; return what came before it."""
    global buf
    end = time.time() + timeout
    while marker.encode() not in buf:
        left = end - time.time()
        r, _, _ = select.select([fd], [], [], max(0, left))
        if not r:
            sys.exit('timeout waiting for %r; got %r' % (marker, buf))
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b''
        if not data:
            sys.exit('terminal closed waiting for %r; got %r' % (marker, buf))
        buf += data
    i = buf.index(marker.encode())
    before, buf = buf[:i], buf[i + len(marker):]
    return before.decode(errors='replace')

def send(text):
    os.write(fd, text.encode() if isinstance(text, str) else text)

# Markers are computed by the shell ($((…))), so the echo of what was typed never matches.
send('tty; stty size; echo m$((40+2))\n')
seen = expect('m42')
assert '/dev/pts/' in seen and '30 90' in seen, seen
print('size-ok')

# A new window size reaches the command (through SIGWINCH to standin, relayed).
set_size(fd, 40, 120)
for i in range(100):
    send('stty size; echo w$((%d+1000))\n' % i)
    if '40 120' in expect('w%d' % (i + 1000)):
        break
else:
    sys.exit('the new size never arrived')
print('resize-ok')

# Ctrl-C reaches the foreground job as SIGINT.
send("sh -c 'echo s$((1+1)); exec sleep 30'\n")
expect('s2')
send(b'\x03')
send('echo "rc=$?"\n')
expect('rc=130')
print('ctrl-c-ok')

# Ctrl-Z stops it: job control.
send("sh -c 'echo z$((1+1)); exec sleep 31'\n")
expect('z2')
send(b'\x1a')
expect('Stopped')
send('kill -9 %1; echo k$((1+1))\n')
expect('k2')
# Until the shell has seen the job go, it refuses to exit: ask until `jobs` is empty.
for i in range(100):
    send('jobs; echo j$((%d+2000))\n' % i)
    if 'sleep 31' not in expect('j%d' % (i + 2000)):
        break
else:
    sys.exit('the killed job never went away')
print('ctrl-z-ok')

lflag = termios.tcgetattr(fd)[3]
assert not lflag & termios.ICANON, 'not in raw mode while relaying'
send('exit 6\n')
end = time.time() + 20
while True:
    r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
    if not r:
        sys.exit('the terminal never closed after exit; got %r' % buf)
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    buf += data
_, status = os.waitpid(pid, 0)
print('exit=%d' % os.waitstatus_to_exitcode(status))
lflag = termios.tcgetattr(fd)[3]
print('restored=%s' % bool(lflag & termios.ICANON and lflag & termios.ECHO))
