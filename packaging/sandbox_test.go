package packaging_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sandboxEnv carries the restrictions to the re-executed test binary:
// "caps=0,10;allow=1,2,3;umask=0027".
const sandboxEnv = "V6EDGE_TEST_SANDBOX"

// unitRestrictions is what of a unit's [Service] section the sandbox
// reproduces: the capability bounding set, the system call filter with
// SystemCallErrorNumber and SystemCallArchitectures=native, NoNewPrivileges
// and UMask. Filesystem namespaces (ProtectSystem, PrivateTmp, ...) and
// RestrictAddressFamilies are not reproduced.
type unitRestrictions struct {
	caps    []int
	allowed []int // system call numbers for this architecture
	umask   int
}

// parseUnit reads the unit's [Service] settings, in order.
func parseUnit(text string) map[string][]string {
	kv := map[string][]string{}
	section := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			if k, v, ok := strings.Cut(line, "="); ok {
				kv[k] = append(kv[k], v)
			}
		}
	}
	return kv
}

var capNumbers = map[string]int{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE, "CAP_FOWNER": unix.CAP_FOWNER,
	"CAP_NET_ADMIN": unix.CAP_NET_ADMIN, "CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_SETGID": unix.CAP_SETGID, "CAP_SETUID": unix.CAP_SETUID, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
}

// syscallGroup expands a systemd system call group with systemd-analyze,
// recursively.
func syscallGroup(t *testing.T, name string, seen map[string][]string) []string {
	if names, ok := seen[name]; ok {
		return names
	}
	out, err := exec.Command("systemd-analyze", "syscall-filter", "--no-pager", name).Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter %s: %v", name, err)
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n")[1:] {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "@"):
			names = append(names, syscallGroup(t, l, seen)...)
		default:
			names = append(names, l)
		}
	}
	seen[name] = names
	return names
}

// syscallNumbers maps names to this architecture's numbers, from the
// x/sys/unix table the module already depends on.
func syscallNumbers(t *testing.T) map[string]int {
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "golang.org/x/sys").Output()
	if err != nil {
		t.Fatalf("locating golang.org/x/sys: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(dir)), "unix", "zsysnum_linux_"+runtime.GOARCH+".go"))
	if err != nil {
		t.Fatal(err)
	}
	nums := map[string]int{}
	re := regexp.MustCompile(`(?m)^\s*SYS_([A-Z0-9_]+)\s*=\s*(\d+)`)
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		n, _ := strconv.Atoi(m[2])
		nums[strings.ToLower(m[1])] = n
	}
	return nums
}

// restrictionsOf computes the restrictions the unit text asks for, with
// systemd's semantics: the first SystemCallFilter= decides allow- or
// deny-list (an allow-list implicitly holds @default); later entries add
// to it, "~" entries take away.
func restrictionsOf(t *testing.T, unit string) unitRestrictions {
	kv := parseUnit(unit)
	var r unitRestrictions
	for _, line := range kv["CapabilityBoundingSet"] {
		for _, c := range strings.Fields(line) {
			n, ok := capNumbers[c]
			if !ok {
				t.Fatalf("unknown capability %s", c)
			}
			r.caps = append(r.caps, n)
		}
	}
	if got := kv["NoNewPrivileges"]; len(got) != 1 || got[0] != "yes" {
		t.Fatalf("NoNewPrivileges = %v: the sandbox always sets it", got)
	}
	if got := kv["SystemCallErrorNumber"]; len(got) != 1 || got[0] != "EPERM" {
		t.Fatalf("SystemCallErrorNumber = %v: the sandbox returns EPERM", got)
	}
	if got := kv["SystemCallArchitectures"]; len(got) != 1 || got[0] != "native" {
		t.Fatalf("SystemCallArchitectures = %v: the sandbox allows the native one", got)
	}
	um := "0022"
	if v := kv["UMask"]; len(v) > 0 {
		um = v[len(v)-1]
	}
	u, err := strconv.ParseInt(um, 8, 32)
	if err != nil {
		t.Fatal(err)
	}
	r.umask = int(u)

	seen := map[string][]string{}
	expand := func(entry string) []string {
		var out []string
		for _, f := range strings.Fields(entry) {
			if strings.HasPrefix(f, "@") {
				out = append(out, syscallGroup(t, f, seen)...)
			} else {
				out = append(out, f)
			}
		}
		return out
	}
	filters := kv["SystemCallFilter"]
	if len(filters) == 0 || strings.HasPrefix(filters[0], "~") {
		t.Fatalf("SystemCallFilter = %v: the sandbox reproduces an allow-list", filters)
	}
	allowed := map[string]bool{}
	for _, n := range expand("@default") {
		allowed[n] = true
	}
	for _, f := range filters {
		deny := strings.HasPrefix(f, "~")
		for _, n := range expand(strings.TrimPrefix(f, "~")) {
			allowed[n] = !deny
		}
	}
	nums := syscallNumbers(t)
	for n, ok := range allowed {
		if nr, known := nums[n]; ok && known {
			r.allowed = append(r.allowed, nr)
		}
	}
	return r
}

func (r unitRestrictions) env() string {
	join := func(xs []int) string {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = strconv.Itoa(x)
		}
		return strings.Join(s, ",")
	}
	return fmt.Sprintf("caps=%s;allow=%s;umask=%o", join(r.caps), join(r.allowed), r.umask)
}

// sandboxExec applies spec to this thread and execs argv, as systemd's
// exec step does for the service: bounding set, no_new_privs, seccomp.
// Running as root, the exec'd program's permitted and effective sets are
// the bounding set, as under the unit (User= unset).
func sandboxExec(spec string, argv []string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(127)
	}
	runtime.LockOSThread()
	fields := map[string][]int{}
	var umask int64
	for _, part := range strings.Split(spec, ";") {
		k, v, _ := strings.Cut(part, "=")
		if k == "umask" {
			umask, _ = strconv.ParseInt(v, 8, 32)
			continue
		}
		for _, x := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(x); err == nil {
				fields[k] = append(fields[k], n)
			}
		}
	}
	syscall.Umask(int(umask))
	keep := map[int]bool{}
	for _, c := range fields["caps"] {
		keep[c] = true
	}
	last, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		fail(err)
	}
	lastCap, _ := strconv.Atoi(strings.TrimSpace(string(last)))
	for c := 0; c <= lastCap; c++ {
		if !keep[c] {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				fail(fmt.Errorf("dropping capability %d: %w", c, err))
			}
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fail(err)
	}
	var arch uint32
	switch runtime.GOARCH {
	case "amd64":
		arch = unix.AUDIT_ARCH_X86_64
	case "arm64":
		arch = unix.AUDIT_ARCH_AARCH64
	default:
		fail(fmt.Errorf("no seccomp architecture for %s", runtime.GOARCH))
	}
	deny := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // seccomp_data.arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, Jf: 0, K: arch},
		{Code: unix.BPF_RET | unix.BPF_K, K: deny},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0},                          // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, Jt: 0, Jf: 1, K: 0x40000000}, // x32
		{Code: unix.BPF_RET | unix.BPF_K, K: deny},
	}
	for _, nr := range fields["allow"] {
		prog = append(prog,
			unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: uint32(nr)},
			unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW})
	}
	prog = append(prog, unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: deny})
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
		fail(fmt.Errorf("seccomp: %w", err))
	}
	fail(unix.Exec(argv[0], argv, os.Environ()))
}

// TestSocketGroupUnderTheUnitsRestrictions runs `v6edge run` with the
// restrictions configs/v6edge.service sets and control.socket_group set:
// the socket must come up with that group, mode 0660, and answer. systemd
// is not PID 1 in every test environment (systemd-run needs it), so the
// test binary applies the unit's capability bounding set, system call
// filter (expanded by systemd-analyze), error number, architecture,
// NoNewPrivileges and UMask itself before exec'ing the daemon, in a network
// namespace of its own with veth wan0 and lan0. That it reproduces the
// restriction is shown by the unit without the fchownat line, or without
// CAP_CHOWN: there the daemon must fail on the chown, as the issue reports.
func TestSocketGroupUnderTheUnitsRestrictions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: capabilities, a network namespace")
	}
	for _, tool := range []string{"systemd-analyze", "unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("no seccomp architecture for %s here", runtime.GOARCH)
	}
	group, gid := "", -1
	for _, g := range []string{"nogroup", "daemon", "adm", "users"} {
		if out, err := exec.Command("getent", "group", g).Output(); err == nil {
			f := strings.Split(strings.TrimSpace(string(out)), ":")
			if n, err := strconv.Atoi(f[2]); err == nil && n != 0 {
				group, gid = g, n
				break
			}
		}
	}
	if group == "" {
		t.Skip("no non-root group on this machine to give the socket")
	}
	bin := v6edgeBinary(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := os.ReadFile("../configs/v6edge.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(shipped)

	start := func(t *testing.T, unit string) (*exec.Cmd, string, *bytes.Buffer) {
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		sock := filepath.Join(dir, "run", "v6edge.sock")
		cfg := filepath.Join(dir, "v6edge.toml")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`[wan]
interface = "wan0"
[nat]
internal_prefix = "fd00:1::/56"
[[lan]]
interface = "lan0"
subnet = 1
[control]
socket = %q
state_dir = %q
socket_group = %q
`, sock, filepath.Join(dir, "state"), group)), 0o644)
		r := restrictionsOf(t, unit)
		script := `ip link set lo up && ip link add wan0 type veth peer name wan0p && ip link add lan0 type veth peer name lan0p &&
ip link set wan0p up && ip link set lan0p up &&
ip link set wan0 up && ip link set lan0 up && exec "$0" "$@"`
		cmd := exec.Command("unshare", "--net", "--", "sh", "-c", script, self, bin, "run", "-config", cfg, "-log-level", "debug")
		cmd.Env = append(os.Environ(), sandboxEnv+"="+r.env(), "NOTIFY_SOCKET=", "JOURNAL_STREAM=")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, sock, &stderr
	}

	t.Run("shipped unit: the socket has socket_group", func(t *testing.T) {
		cmd, sock, stderr := start(t, unit)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		exited := false
		defer func() {
			if exited {
				return
			}
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}()
		var fi os.FileInfo
		deadline := time.Now().Add(15 * time.Second)
		for {
			var err error
			if fi, err = os.Stat(sock); err == nil && fi.Mode().Perm() == 0o660 {
				break
			}
			select {
			case err := <-done:
				exited = true
				t.Fatalf("the daemon exited under the unit's restrictions: %v\n%s", err, stderr.String())
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no control socket at %s after 15 s (last stat %v)", sock, fi)
			}
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Gid) != gid || fi.Mode().Perm() != 0o660 {
			t.Errorf("socket gid %d mode %o, want %d (%s) and 0660", st.Gid, fi.Mode().Perm(), gid, group)
		}
		out, err := exec.Command(bin, "status", "-socket", sock).CombinedOutput()
		if code := exitCode(err); code == 2 {
			t.Errorf("status over the socket: exit %d\n%s", code, out)
		}
	})

	for _, tc := range []struct{ name, drop, from, to string }{
		{"without fchownat in the filter", "SystemCallFilter=fchownat\n", "", ""},
		{"without CAP_CHOWN", "", " CAP_CHOWN", ""},
	} {
		t.Run("control: "+tc.name+" the chown fails", func(t *testing.T) {
			u := unit
			if tc.drop != "" {
				if !strings.Contains(u, tc.drop) {
					t.Fatalf("the unit has no %q", tc.drop)
				}
				u = strings.ReplaceAll(u, tc.drop, "")
			}
			if tc.from != "" {
				u = strings.ReplaceAll(u, tc.from, tc.to)
			}
			cmd, _, stderr := start(t, u)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(stderr.String(), "chown control socket") || !strings.Contains(stderr.String(), "operation not permitted") {
					t.Errorf("exit %v, stderr:\n%s\nwant the chown refused with EPERM", err, stderr.String())
				}
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Errorf("the daemon kept running: the sandbox did not reproduce the restriction\n%s", stderr.String())
			}
		})
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
