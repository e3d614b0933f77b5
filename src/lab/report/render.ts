/**
 * The report renderers: the JSON a run writes (types.ts) as Markdown and as
 * one self-contained HTML file. They lay out measured numbers and compute
 * none; both are pure functions of the report.
 */
export { renderMarkdown } from './render-md.js';
export { renderHtml } from './render-html.js';
