"use strict";
// Requests, for both pages: apiClient(WHO) is an api(path, options) that resolves to the server's JSON answer, or
// rejects with an Error whose message is what the user is told: the server's own (its one error shape,
// {"error", "field"}), with `field`, `status` and `retryAfter` (seconds, as the server says) on it.
function apiClient(who) {
  return async function api(path, options = {}) {
    let response;
    try {
      response = await fetch(path, options);
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new Error(`cannot reach ${who}: ${error.message}`);
    }
    const answer = await response.json().catch(() => null);   // null: not JSON (a proxy's error page, a cut-off answer)
    if (!response.ok || answer === null) {
      const failure = new Error((answer && answer.error) || `${who} answered ${response.status} ${response.statusText}`);
      failure.field = answer ? answer.field : null;
      failure.status = response.status;
      failure.retryAfter = Number(response.headers.get("Retry-After")) || 1;
      throw failure;
    }
    return answer;
  };
}
