package rp

import "testing"

func BenchmarkParseClaims(b *testing.B) {
	raw := []byte(`{"aud":"https://api.example.test","client_id":"spa","exp":1764201600,"iat":1764200000,"iss":"http://127.0.0.1:41234","jti":"jti-2","scope":"openid profile checkout","sub":"user-1"}`)
	for b.Loop() {
		if _, err := parseClaims(raw); err != nil {
			b.Fatal(err)
		}
	}
}
