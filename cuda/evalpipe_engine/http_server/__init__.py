"""`python -m evalpipe_engine http`: the engine behind an OpenAI-compatible HTTP server (docs/engine-http.md).

One file per concept: `config` (the subcommand's arguments), `app` (start-up, signals, shut-down), `handler`
(routes, auth, JSON and event streams), `worker` (the one thread that owns the model, and batching), `jobs` (what
request threads hand it and get back), `flow` (a request's choices and context checks), `completions`,
`chat_completions` and `tokenization` (the endpoints), `request_params` and `fields` (reading bodies), `prompts`,
`chat` (the chat template), `token_logprobs` (prompt and top-k log-probabilities), `logprobs_json` (the legacy
logprobs object), `text_stream` (streamed text), `api_errors` (OpenAI's error shape). Only the standard library
serves HTTP; decoding goes through generation.decode_prompts and prompt log-probabilities through the score op's
target_logprobs, so answers equal the stdio engine's.
"""
