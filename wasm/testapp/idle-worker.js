// A worker script that loads but never answers: the client's start-up
// timeout must turn it into the error worker_failed (test/browser.test.mjs).
