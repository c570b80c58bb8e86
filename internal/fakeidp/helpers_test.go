package fakeidp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
)

func hexHMAC(key, msg string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(msg))
	return hex.EncodeToString(mac.Sum(nil))
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}
