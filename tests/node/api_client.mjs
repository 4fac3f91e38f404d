// Runway's official Node SDK (@runwayml/sdk, package.json) against our /v1/ API, configured as
// Runway's own documentation says: RUNWAYML_BASE_URL and RUNWAYML_API_SECRET. Run by
// tests/test_api_sdk.py, which checks what this prints (one JSON object) against the database.
import RunwayML, { toFile } from "@runwayml/sdk";

const client = new RunwayML();  // both from the environment
const png = Buffer.from(process.env.TEST_PNG_BASE64, "base64");

const upload = await client.uploads.createEphemeral({ file: await toFile(png, "frame.png", { type: "image/png" }) });
const done = await client.imageToVideo
  .create({ model: "gen4_turbo", promptImage: upload.uri, promptText: "From Node", ratio: "1280:720", duration: 5 })
  .waitForTaskOutput({ timeout: 60_000 });
const video = await fetch(done.output[0]);
const bytes = Buffer.from(await video.arrayBuffer());

const organization = await client.organization.retrieve();
let refused = null;
try {
  await client.textToVideo.create({ model: "gen4.5", promptText: "x", ratio: "1:1", duration: 5 });
} catch (error) {
  refused = { status: error.status, issues: error.error?.issues ?? null };
}
await client.tasks.delete(done.id);
let afterDelete = null;
try {
  await client.tasks.retrieve(done.id);
} catch (error) {
  afterDelete = error.status;
}
console.log(JSON.stringify({
  id: done.id, status: done.status, cost: done.cost, downloaded: video.status, size: bytes.length,
  uri: upload.uri, balance: organization.creditBalance, refused, afterDelete,
}));
