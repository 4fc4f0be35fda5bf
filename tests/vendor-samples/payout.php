<?php
// Payout: POST {ATMOON_BASE_URL}/api/payoutapi, a form.
// The API document gives no PHP for this call, only its form fields ("Form-Data :- [amount] ...
// [longitude]") and a stray closing PHP tag; this is written in the style of the document's
// other samples (curl, http_build_query: application/x-www-form-urlencoded), with the field
// names exactly as the document lists them.
//
// Usage: ATMOON_BASE_URL=... ATMOON_TOKEN=<token from token.php> [PAYOUT_REF=...] php payout.php
// Prints the answer's body on stdout and "HTTP <code>" on stderr. The document's answer:
//   {"message": "Success", "status": 1, "Transaction": [{"customer_name": "Jhon Doe",
//    "account_no": "69659120888", "Order-Id": "123456"}]}
// (the document's own copy has a trailing comma after "Order-Id", which is not JSON).

$base = getenv('ATMOON_BASE_URL');
$token = getenv('ATMOON_TOKEN');
if (!$base || !$token) {
    fwrite(STDERR, "payout.php: set ATMOON_BASE_URL and ATMOON_TOKEN (the token token.php prints)\n");
    exit(2);
}
$url = rtrim($base, '/') . '/api/payoutapi';

// The document's example values, except where marked FIX.
$parameters = [
    'amount'        => getenv('PAYOUT_AMOUNT') ?: '1500.50',
    'user_id'       => getenv('ATMOON_USER_ID') ?: '172',
    'utoken'        => $token,
    'Name'          => 'Jhon Doe',
    'accountNumber' => getenv('PAYOUT_ACCOUNT') ?: '69659120888',
    'bankIfsc'      => 'SBIN0011243',
    'payeeListId'   => '',
    'transferMode'  => 'IMPS',
    'remarks'       => 'Salary',
    // FIX: the document's example reference is 123456, which is also its example order id: a
    // short number a gateway may read as someone else's order id (SPEC 4). A reference of its
    // own, new on each run unless PAYOUT_REF says otherwise (a reference is paid once: the same
    // one again is TE0005, duplicate).
    'externalRef'   => getenv('PAYOUT_REF') ?: ('PHP-SAMPLE-' . date('YmdHis')),
    'latitude'      => '15.05',
    'longitude'     => '10.05',
];

$ch = curl_init();
// TLS verification stays on (curl's default), unlike the document's other samples; the sandbox is
// plain http on loopback, where it changes nothing.
curl_setopt($ch, CURLOPT_URL, $url);
// A form, not JSON: a JSON body is refused (TE0003, Invalid Request Format).
curl_setopt($ch, CURLOPT_POSTFIELDS, http_build_query($parameters));
curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
$response = curl_exec($ch);
if ($response === false) {
    fwrite(STDERR, "payout.php: no answer: " . curl_error($ch) . "\n");
    exit(1);
}
fwrite(STDERR, "HTTP " . curl_getinfo($ch, CURLINFO_RESPONSE_CODE) . "\n");
curl_close($ch);
echo $response, "\n";
