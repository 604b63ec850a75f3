// Charts without a browser: Observable Plot draws into a linkedom document
// (Plot only needs createElement and friends), the chart's SVG elements are
// stacked into one standalone SVG file, and resvg turns that into a PNG with
// the machine's fonts. Node only; the page draws the same charts with the
// browser's document.
import * as Plot from '@observablehq/plot';
import { Resvg } from '@resvg/resvg-js';
import { parseHTML } from 'linkedom';
import type { ChartDocument } from './charts.ts';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** A fresh document for Plot to draw into. */
export function chartDocument(): ChartDocument {
  return parseHTML('<!doctype html><html><head></head><body></body></html>').document as unknown as ChartDocument;
}

export { Plot };

function size(svg: Element): { width: number; height: number } {
  const width = Number(svg.getAttribute('width'));
  const height = Number(svg.getAttribute('height'));
  if (!Number.isFinite(width) || !Number.isFinite(height) || width <= 0 || height <= 0)
    throw new Error('a chart SVG has no width and height attributes');
  return { width, height };
}

/** One standalone SVG document (white background) holding the charts top to bottom. */
export function standaloneSvg(charts: readonly Element[], gap = 12): string {
  const sizes = charts.map(size);
  const width = Math.max(...sizes.map((s) => s.width));
  const height = sizes.reduce((sum, s) => sum + s.height, 0) + gap * Math.max(0, charts.length - 1);
  let y = 0;
  const parts = charts.map((svg, i) => {
    const s = sizes[i] ?? { width: 0, height: 0 };
    svg.setAttribute('x', '0');
    svg.setAttribute('y', String(y));
    y += s.height + gap;
    return svg.outerHTML;
  });
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="${SVG_NS}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
    `<rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>\n`
  );
}

/** The SVG rendered to PNG at `scale` times its size (2 for sharp text on high-density screens). */
export function svgToPng(svg: string, scale = 2): Buffer {
  const resvg = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: scale },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}
