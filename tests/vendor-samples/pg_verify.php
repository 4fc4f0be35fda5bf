<?php
// PG payment verify: POST {ATMOON_BASE_URL}/pg/payment/{token}/response, a form.
// The API document's "verify the PG payment" sample, pointed at an environment variable for the
// base URL, with the document's bugs fixed. Every fix is marked FIX and says what the document had.
//
// Usage: ATMOON_BASE_URL=... PG_URL=<url from pg_initiate.php> PG_TRANSACTION_ID=...
//        PG_REFERENCE_NO=... php pg_verify.php
// Prints the answer's body on stdout and "HTTP <code>" on stderr. The document's answer, once
// paid: {"status": true, "data": {"status": true, "code": "PAYMENT_SUCCESS", "data": {...,
// "state": "COMPLETED", "utr_no": "402961777989"}}, "message": "Details Fetched Successfuly.!"}.
// Before anyone paid on the page the url opens, the sandbox answers the same shape with
// "status": false, "code": "PAYMENT_PENDING", "state": "PENDING" (the document shows no such
// answer).

// FIX: the document sets $url and $headers *before* its "<?php" line (printed as text, not run).
$base = getenv('ATMOON_BASE_URL');
$pgUrl = getenv('PG_URL');
$transactionId = getenv('PG_TRANSACTION_ID');
$referenceNo = getenv('PG_REFERENCE_NO');
if (!$base || !$pgUrl || !$transactionId || !$referenceNo) {
    fwrite(STDERR, "pg_verify.php: set ATMOON_BASE_URL, PG_URL, PG_TRANSACTION_ID and PG_REFERENCE_NO (from pg_initiate.php)\n");
    exit(2);
}
// FIX: the document's URL keeps the literal placeholder ".../pg/payment/{token}/response".
// {token} is the last path segment of the url that initiate returned.
$path = parse_url($pgUrl, PHP_URL_PATH) ?: '';
$pgToken = basename(rtrim($path, '/'));
$url = rtrim($base, '/') . '/pg/payment/' . rawurlencode($pgToken) . '/response';

$headers = [
    "Accept: application/json",
    // FIX: the credential's name where its value belongs, as in the other samples.
    "Authorization: access_key " . (getenv('ATMOON_ACCESS_KEY') ?: '51a4bd18-5bc1-4eaa-97b0-c09323398883'),
    "Authorization: merchant_key " . (getenv('ATMOON_MERCHANT_KEY') ?: '41d9eda4b67538fc8ad27e564ddde1bb7b20ad08'),
    "Authorization: client_id " . (getenv('ATMOON_CLIENT_ID') ?: '61662'),
    "Authorization: api_password " . (getenv('ATMOON_API_PASSWORD') ?: 'a90db387a3e3b8a22d923966326327c17e9a6ed6'),
];
// FIX: the document writes this array with ":" ("transaction_id": "5LJOFI5QQB00"), a PHP syntax
// error; and hard-codes its example ids: the ones initiate returned.
$parameters = [
    'transaction_id' => $transactionId,
    'pg_reference_no' => $referenceNo,
];
$ch = curl_init();
curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);
// FIX: the document turns TLS host verification off (CURLOPT_SSL_VERIFYHOST false). Not here
// (see token.php): against the sandbox, plain http on loopback, it changes nothing.
curl_setopt($ch, CURLOPT_URL, $url);
curl_setopt($ch, CURLOPT_POSTFIELDS, http_build_query($parameters));
curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
$response = curl_exec($ch);
// FIX: the document neither checks curl_exec's result nor shows the answer.
if ($response === false) {
    fwrite(STDERR, "pg_verify.php: no answer: " . curl_error($ch) . "\n");
    exit(1);
}
fwrite(STDERR, "HTTP " . curl_getinfo($ch, CURLINFO_RESPONSE_CODE) . "\n");
curl_close($ch);
echo $response, "\n";
