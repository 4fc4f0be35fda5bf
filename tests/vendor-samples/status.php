<?php
// Payout status: POST {ATMOON_BASE_URL}/api/AtMoonPayout, JSON {"method": "PAYOUTSTATUS", ...}.
// The API document gives no PHP for this call, only its URL, headers and body; this is written in
// the style of the document's other samples (curl).
//
// Usage: ATMOON_BASE_URL=... ATMOON_TOKEN=... PAYOUT_ID=<Order-Id or externalRef> php status.php
// Prints the answer's body on stdout and "HTTP <code>" on stderr. The document's answer:
//   {"message": "SUCCESS", "status": 1, "customer_name": "Jhon Doe", "account_no": "39628544321",
//    "Ifsc_code": "SBIN0011243"}
// (the document's own copy lacks the comma after "account_no", which is not JSON). "status" is
// the number 1, so `$answer['status'] === 1` holds against the sandbox's clean and realistic
// profiles.

$base = getenv('ATMOON_BASE_URL');
$token = getenv('ATMOON_TOKEN');
$payoutId = getenv('PAYOUT_ID');
if (!$base || !$token || !$payoutId) {
    fwrite(STDERR, "status.php: set ATMOON_BASE_URL, ATMOON_TOKEN and PAYOUT_ID (the payout's Order-Id or externalRef)\n");
    exit(2);
}
$url = rtrim($base, '/') . '/api/AtMoonPayout';

// The four headers the document lists for this call (REQUEST HEADERS: x-client-id,
// x-client-secret, user_id, utoken). x-client-id is the client id; x-client-secret is the API
// password (the document does not say which secret; the sandbox takes the API password).
$headers = [
    // FIX: the document writes "CONTEN-TYPE: application/json".
    "Content-Type: application/json",
    "x-client-id: " . (getenv('ATMOON_CLIENT_ID') ?: '61662'),
    "x-client-secret: " . (getenv('ATMOON_API_PASSWORD') ?: 'a90db387a3e3b8a22d923966326327c17e9a6ed6'),
    "user_id: " . (getenv('ATMOON_USER_ID') ?: '172'),
    "utoken: " . $token,
];
$body = json_encode(['method' => 'PAYOUTSTATUS', 'payout_id' => $payoutId]);

$ch = curl_init();
curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
// TLS verification stays on (curl's default); the sandbox is plain http on loopback.
curl_setopt($ch, CURLOPT_URL, $url);
curl_setopt($ch, CURLOPT_POSTFIELDS, $body);
curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
$response = curl_exec($ch);
if ($response === false) {
    fwrite(STDERR, "status.php: no answer: " . curl_error($ch) . "\n");
    exit(1);
}
fwrite(STDERR, "HTTP " . curl_getinfo($ch, CURLINFO_RESPONSE_CODE) . "\n");
curl_close($ch);
echo $response, "\n";
