package password

import (
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("unexpected PHC prefix: %s", h)
	}
	ok, err := Verify(h, "correct horse battery staple")
	if err != nil || !ok {
		t.Fatalf("Verify(right) = %v, %v", ok, err)
	}
	for _, wrong := range []string{"", "correct horse battery stapl", "Correct horse battery staple", "correct horse battery staple "} {
		ok, err := Verify(h, wrong)
		if err != nil || ok {
			t.Errorf("Verify(%q) = %v, %v; want false, nil", wrong, ok, err)
		}
	}
	if NeedsRehash(h) {
		t.Error("fresh hash needs rehash")
	}
}

func TestHashSalted(t *testing.T) {
	a, _ := Hash("same")
	b, _ := Hash("same")
	if a == b {
		t.Fatal("two hashes of the same password are equal: salt missing")
	}
}

func TestEmptyPassword(t *testing.T) {
	h, err := Hash("")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := Verify(h, ""); !ok {
		t.Error("empty password does not verify against its own hash")
	}
	if ok, _ := Verify(h, "x"); ok {
		t.Error("non-empty password verifies against the hash of the empty one")
	}
}

func TestTooLong(t *testing.T) {
	long := strings.Repeat("a", MaxLength+1)
	if _, err := Hash(long); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Hash(1025 bytes) err = %v, want ErrTooLong", err)
	}
	if _, err := Hash(long[:MaxLength]); err != nil {
		t.Fatalf("Hash(1024 bytes) err = %v", err)
	}
	h, _ := Hash("short")
	ok, err := Verify(h, long)
	if ok || err != nil {
		t.Fatalf("Verify(too long) = %v, %v; want false, nil", ok, err)
	}
}

// A hash made by the reference C implementation (libargon2's
// argon2id_hash_encoded with t=2, m=65536, p=4, salt "somesalt", 24-byte
// hash) must verify: the PHC format is interoperable.
func TestVerifyReferenceVector(t *testing.T) {
	const ref = "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$F1jG2CV3/Nr+yRuIsPKw0J9r4s7cJHBU"
	ok, err := Verify(ref, "password")
	if err != nil || !ok {
		t.Fatalf("Verify(reference) = %v, %v", ok, err)
	}
	if ok, _ := Verify(ref, "passwore"); ok {
		t.Fatal("wrong password verifies against reference vector")
	}
	if !NeedsRehash(ref) {
		t.Error("hash with other parameters does not need rehash")
	}
}

func TestVerifyMalformed(t *testing.T) {
	good, _ := Hash("pw")
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	cases := map[string]string{
		"empty":           "",
		"bcrypt":          "$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
		"argon2i":         "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"old version":     "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key,
		"missing param":   "$argon2id$v=19$m=19456,t=2$" + salt + "$" + key,
		"unknown param":   "$argon2id$v=19$m=19456,t=2,p=1,x=3$" + salt + "$" + key,
		"zero time":       "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key,
		"huge memory":     "$argon2id$v=19$m=4194304,t=2,p=1$" + salt + "$" + key,
		"huge time":       "$argon2id$v=19$m=19456,t=1000000,p=1$" + salt + "$" + key,
		"huge lanes":      "$argon2id$v=19$m=19456,t=2,p=256$" + salt + "$" + key,
		"negative":        "$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + key,
		"bad salt":        "$argon2id$v=19$m=19456,t=2,p=1$!!!$" + key,
		"short salt":      "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + key,
		"short hash":      "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$aGFzaA",
		"padded":          good + "=",
		"extra field":     good + "$x",
		"no leading $":    strings.TrimPrefix(good, "$"),
		"memory < 8*p":    "$argon2id$v=19$m=8,t=2,p=2$" + salt + "$" + key,
		"spaces in param": "$argon2id$v=19$m= 19456,t=2,p=1$" + salt + "$" + key,
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			ok, err := Verify(h, "pw")
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("Verify = %v, %v; want false, ErrMalformedHash", ok, err)
			}
			if !NeedsRehash(h) {
				t.Error("malformed hash does not need rehash")
			}
		})
	}
}

func TestNeedsRehashOnParameterChange(t *testing.T) {
	good, _ := Hash("pw")
	weaker := strings.Replace(good, "t=2", "t=1", 1)
	if !NeedsRehash(weaker) {
		t.Error("hash with t=1 does not need rehash")
	}
	if ok, err := Verify(weaker, "pw"); ok || err != nil {
		t.Errorf("Verify with tampered parameters = %v, %v; want false, nil", ok, err)
	}
}

// TestDummyVerify: DummyVerify does the work of one Verify of a wrong
// password — argon2id with the current parameters, so the same memory and
// about the same time — and, like Verify, none for a password longer than
// MaxLength. (Memory is counted exactly; time only within a loose factor,
// the best of three runs, since the machine may be busy.)
func TestDummyVerify(t *testing.T) {
	hash, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	verify := func(pw string) func() {
		return func() {
			if ok, err := Verify(hash, pw); ok || err != nil {
				t.Errorf("Verify(%.10q) = %v, %v; want false, nil", pw, ok, err)
			}
		}
	}
	dummy := func(pw string) func() { return func() { DummyVerify(pw) } }
	long := strings.Repeat("a", MaxLength+1)
	costMiB := int(current.memory / 1024)

	if got := allocMiB(dummy("wrong password")); got < costMiB {
		t.Errorf("DummyVerify allocated %d MiB; argon2id with the current parameters takes %d", got, costMiB)
	}
	if got, want := allocMiB(dummy("wrong password")), allocMiB(verify("wrong password")); got != want {
		t.Errorf("DummyVerify allocated %d MiB, Verify of a wrong password %d", got, want)
	}
	if got := allocMiB(dummy(long)); got != 0 {
		t.Errorf("DummyVerify of a %d-byte password allocated %d MiB; want no hashing", len(long), got)
	}
	if got := allocMiB(verify(long)); got != 0 {
		t.Errorf("Verify of a %d-byte password allocated %d MiB; want no hashing", len(long), got)
	}

	d, v := fastest(3, dummy("wrong password")), fastest(3, verify("wrong password"))
	if ratio := float64(d) / float64(v); ratio < 0.4 || ratio > 2.5 {
		t.Errorf("DummyVerify takes %v, Verify of a wrong password %v: not the same work", d, v)
	}
}

// allocMiB returns the MiB that fn allocates, rounded down.
func allocMiB(fn func()) int {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return int((after.TotalAlloc - before.TotalAlloc) >> 20)
}

// fastest returns the shortest of n runs of fn.
func fastest(n int, fn func()) time.Duration {
	best := time.Duration(math.MaxInt64)
	for range n {
		start := time.Now()
		fn()
		best = min(best, time.Since(start))
	}
	return best
}

func BenchmarkHash(b *testing.B) {
	for b.Loop() {
		if _, err := Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h, _ := Hash("correct horse battery staple")
	for b.Loop() {
		if ok, _ := Verify(h, "correct horse battery staple"); !ok {
			b.Fatal("no match")
		}
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
	h, _ := Hash("correct horse battery staple")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, _ := Verify(h, "correct horse battery staple"); !ok {
				b.Error("no match")
			}
		}
	})
}

// FuzzDecode checks that the PHC parser never panics and that whatever it
// accepts re-encodes to a hash it reads back identically.
func FuzzDecode(f *testing.F) {
	good, _ := Hash("pw")
	f.Add(good)
	f.Add("$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$F1jG2CV3/Nr+yRuIsPKw0J9r4s7cJHBU")
	f.Add("$argon2id$v=19$m=1,t=1,p=1$$")
	f.Add("$$$$$")
	f.Fuzz(func(t *testing.T, encoded string) {
		p, salt, key, err := decode(encoded)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("error %v does not wrap ErrMalformedHash", err)
			}
			return
		}
		p2, salt2, key2, err := decode(encode(p, salt, key))
		if err != nil || p2 != p || string(salt2) != string(salt) || string(key2) != string(key) {
			t.Fatalf("re-encoded %q does not decode to the same hash: %v", encoded, err)
		}
	})
}
