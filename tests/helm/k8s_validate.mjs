// Validation of rendered Kubernetes objects against the Kubernetes (and Prometheus Operator)
// schemas, offline: the npm packages kubernetes-models and @kubernetes-models/prometheus-operator
// ship a compiled JSON-schema validator per kind (types, enums, required fields, formats).
// Those validators accept unknown fields, as the OpenAPI schemas do; the API server does not
// (strict field validation), so unknownFields() walks the object along the packages' typed
// interfaces (.d.ts) and reports every field the type does not declare.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

export function modelFile(nodeModules, apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com")
    return path.join(nodeModules, "@kubernetes-models/prometheus-operator", group, version, kind);
  return path.join(nodeModules, "kubernetes-models", group || "", version, kind);
}

// Throws with every schema error of obj, or when no schema exists for its apiVersion/kind.
export async function validateObject(nodeModules, obj) {
  const base = modelFile(nodeModules, obj.apiVersion, obj.kind);
  if (!fs.existsSync(base + ".js"))
    throw new Error(`no schema for ${obj.apiVersion} ${obj.kind} (unknown kind or apiVersion)`);
  const mod = await import(pathToFileURL(base + ".js").href);
  const Model = mod[obj.kind];
  new Model(obj).validate();  // throws an Error listing every violation
  const unknown = unknownFields(nodeModules, base + ".d.ts", obj, "");
  if (unknown.length) throw new Error(`unknown fields: ${unknown.join(", ")}`);
}

const parsed = new Map();

// {props: Map(name -> type text), imports: Map(typeName -> .d.ts path)} of a .d.ts file's first
// interface, or null when the file declares none (type aliases such as IntOrString).
function parseDts(file) {
  if (parsed.has(file)) return parsed.get(file);
  let result = null;
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file, "utf8");
    const imports = new Map();
    for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
      const spec = m[2];
      const target = spec.startsWith(".")
        ? path.join(path.dirname(file), spec.replace(/\.js$/, ".d.ts"))
        : path.join(nodeModulesOf(file), spec + ".d.ts");
      imports.set(m[1], target);
    }
    const body = text.match(/^export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}$/m);
    if (body) {
      const props = new Map();
      for (const m of body[1].matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) props.set(m[1], m[2]);
      result = { props, imports };
    }
  }
  parsed.set(file, result);
  return result;
}

function nodeModulesOf(file) {
  const i = file.lastIndexOf(`${path.sep}node_modules${path.sep}`);
  return file.slice(0, i + "/node_modules".length);
}

export function unknownFields(nodeModules, dtsFile, obj, where) {
  const t = parseDts(dtsFile);
  if (!t || obj === null || typeof obj !== "object" || Array.isArray(obj)) return [];
  const out = [];
  for (const [key, value] of Object.entries(obj)) {
    const at = where ? `${where}.${key}` : key;
    if (!t.props.has(key)) {
      out.push(at);
      continue;
    }
    const type = t.props.get(key).replace(/;$/, "");
    const arr = type.match(/^Array<(I\w+)>$/);
    const name = arr ? arr[1] : /^I\w+$/.test(type) ? type : null;
    if (!name || !t.imports.has(name)) continue;
    const next = t.imports.get(name);
    if (arr && Array.isArray(value))
      value.forEach((v, i) => out.push(...unknownFields(nodeModules, next, v, `${at}[${i}]`)));
    else if (!arr) out.push(...unknownFields(nodeModules, next, value, at));
  }
  return out;
}
