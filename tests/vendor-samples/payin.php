<?php
// PAYIN: POST {ATMOON_BASE_URL}/api/AtMoonPayout, JSON {"method": "PAYIN", ...}.
// The API document gives no PHP for this call, only its headers and a commented JSON body, and no
// URL (SPEC 6.5 reads it as the same /api/AtMoonPayout as PAYOUTSTATUS, the document's other
// "method" call); this is written in the style of the document's other samples (curl).
//
// Usage: ATMOON_BASE_URL=... ATMOON_TOKEN=... [PAYIN_TXN=...] php payin.php
// Prints the answer's body on stdout and "HTTP <code>" on stderr. The document's answer:
//   {"status": "S", "message": "success", "response": {"success": true, "message": "success",
//    "data": {..., "intent_url": "upi://pay?pa=...&am=10&cu=INR..."}}}

$base = getenv('ATMOON_BASE_URL');
$token = getenv('ATMOON_TOKEN');
if (!$base || !$token) {
    fwrite(STDERR, "payin.php: set ATMOON_BASE_URL and ATMOON_TOKEN (the token token.php prints)\n");
    exit(2);
}
$url = rtrim($base, '/') . '/api/AtMoonPayout';

// The document's AUTHORIZATION HEADERS for this call: user_id and utoken.
$headers = [
    "Content-Type: application/json",
    "user_id: " . (getenv('ATMOON_USER_ID') ?: '172'),
    "utoken: " . $token,
];
// FIX: the document's body has // comments after its values, which is not JSON: the same body as
// a PHP array, encoded. The document's example values.
$body = json_encode([
    'method'                => 'PAYIN',
    'merchantTransactionId' => getenv('PAYIN_TXN') ?: 'Atmoontest',
    'amount'                => 1,
    'payment_for'           => 'test',
    'payment_mode'          => 'INTENT',
    'callback_url'          => 'https://example.com/upi/callback',
    'payer_vpa'             => '9851200852@ybl',
    'customer_details'      => [
        'customer_email' => 'xyz@gmail.com',
        'customer_phone' => '9999999999',
    ],
]);

$ch = curl_init();
curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
// TLS verification stays on (curl's default); the sandbox is plain http on loopback.
curl_setopt($ch, CURLOPT_URL, $url);
curl_setopt($ch, CURLOPT_POSTFIELDS, $body);
curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
$response = curl_exec($ch);
if ($response === false) {
    fwrite(STDERR, "payin.php: no answer: " . curl_error($ch) . "\n");
    exit(1);
}
fwrite(STDERR, "HTTP " . curl_getinfo($ch, CURLINFO_RESPONSE_CODE) . "\n");
curl_close($ch);
echo $response, "\n";
