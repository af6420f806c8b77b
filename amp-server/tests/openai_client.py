"""Drives AMP's OpenAI-compatible endpoints with OpenAI's official Python client.

Run by tests/openai_python.rs with AMP_BASE_URL, AMP_API_KEY and AMP_MODEL set; any failed
assertion or unexpected exception exits non-zero with a traceback.
"""

import os

import openai

base_url = os.environ["AMP_BASE_URL"]
model = os.environ["AMP_MODEL"]
client = openai.OpenAI(base_url=base_url, api_key=os.environ["AMP_API_KEY"], max_retries=0, timeout=20)

# A whole answer.
answer = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=16
)
assert answer.object == "chat.completion", answer
assert answer.model == model, answer.model
assert answer.choices[0].message.role == "assistant"
assert answer.choices[0].message.content == "Hello from the mock.", answer.choices[0].message
assert answer.choices[0].finish_reason == "stop"
assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens > 0

# A stream, with the usage chunk at its end.
pieces, usage, finish = [], None, None
stream = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Say hello."}],
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
assert "".join(pieces) == "Hello from the mock.", pieces
assert finish == "stop", finish
assert usage is not None and usage.completion_tokens > 0, usage

# The model list, and one model.
ids = [m.id for m in client.models.list()]
assert model in ids, ids
assert client.models.retrieve(model).id == model

# An unknown model.
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("an unknown model was accepted")
except openai.NotFoundError as err:
    assert err.status_code == 404
    assert err.code == "model_not_found", err.body

# A wrong key.
wrong = openai.OpenAI(base_url=base_url, api_key="amp_not_a_real_key", max_retries=0)
try:
    wrong.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("a wrong key was accepted")
except openai.AuthenticationError as err:
    assert err.status_code == 401
    assert err.code == "invalid_api_key", err.body

print("openai client: all checks passed")
