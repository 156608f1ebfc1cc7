// The Vercel AI SDK pointed at a running gateway. Run by tests/test_clients_node.py, which starts the
// gateway and the fake upstream and passes GATEWAY_URL and GATEWAY_KEY; prints one JSON line per scenario.
// Scenarios: generateText with a tool (two steps: the call, then the answer after the tool result) and
// streamText with a tool, through @ai-sdk/openai (chat completions) and @ai-sdk/anthropic (messages), each
// with the model named by MODEL.
import { generateObject, generateText, stepCountIs, streamText, tool } from "ai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { z } from "zod";

const url = process.env.GATEWAY_URL;
const apiKey = process.env.GATEWAY_KEY;
const [route, model, mode] = process.argv.slice(2);

const weather = tool({
  description: "The weather in a city",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => `sunny in ${city}`,
});

function languageModel() {
  if (route === "openai") {
    return createOpenAI({ baseURL: `${url}/v1`, apiKey }).chat(model);
  }
  return createAnthropic({ baseURL: `${url}/v1`, apiKey })(model);
}

// A PNG of one pixel, sent as an image part.
const PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

async function objectScenario() {
  const result = await generateObject({
    model: languageModel(),
    schema: z.object({ city: z.string(), population: z.number() }),
    messages: [{ role: "user", content: [{ type: "text", text: "Which city is in this picture?" },
                                         { type: "image", image: PIXEL, mediaType: "image/png" }] }],
    maxRetries: 0,
  });
  console.log(JSON.stringify({ route, model, mode, object: result.object }));
}

async function main() {
  if (mode === "object") {
    return objectScenario();
  }
  const request = {
    model: languageModel(),
    prompt: "What is the weather in Paris?",
    tools: { get_weather: weather },
    stopWhen: stepCountIs(2),
    maxRetries: 0,
  };
  let steps;
  let text;
  if (mode === "stream") {
    const result = streamText(request);
    let streamed = "";
    for await (const part of result.textStream) {
      streamed += part;
    }
    steps = await result.steps;
    text = streamed;
  } else {
    const result = await generateText(request);
    steps = result.steps;
    text = result.text;
  }
  const calls = steps.flatMap((step) => step.toolCalls.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input })));
  const results = steps.flatMap((step) => step.toolResults.map((r) => ({ id: r.toolCallId, output: r.output })));
  console.log(JSON.stringify({ route, model, mode, text, calls, results, steps: steps.length,
                               finish: steps.map((s) => s.finishReason) }));
}

main().catch((error) => {
  console.log(JSON.stringify({ error: String(error && (error.responseBody || error.message || error)) }));
  process.exit(1);
});
