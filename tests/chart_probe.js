// Injected into a copy of the `dvc plots` page by tests/test_pipeline.py: once every chart has
// drawn, it describes each one from its Vega view (scales, axes, legends, marks) as JSON in a
// new PRE element, id chart-probe, so the test reads what was drawn, not what the templates ask.
(function () {
  const embed = window.vegaEmbed;
  const pending = [];
  window.vegaEmbed = function (element, spec, options) {
    const result = embed(element, spec, options);
    pending.push(result.then((embedded) => describe(element, embedded.view)));
    return result;
  };

  function box(item) {
    const b = item.bounds;
    return b ? [b.x1, b.y1, b.x2, b.y2] : null;
  }

  // every mark of a role under `scene`, in drawing order
  function marks(scene, role, found = []) {
    if (!scene || !scene.items) return found;
    if (scene.role === role) found.push(scene);
    for (const item of scene.items) {
      if (item.items) for (const child of item.items) marks(child, role, found);
    }
    return found;
  }

  function texts(scene, role) {
    return marks(scene, role).flatMap((m) => m.items.map((i) => ({ text: String(i.text ?? ''), box: box(i) })));
  }

  function describe(element, view) {
    const root = view.scenegraph().root;
    const scale = (name) => {
      try {
        const s = view.scale(name);
        return { type: s.type, domain: s.domain().map(String), range: s.range ? s.range().map(String) : [] };
      } catch (e) {
        return null;
      }
    };
    return {
      element: element,
      title: texts(root, 'title-text').map((t) => t.text).join(' '),
      color: scale('color'),
      axes: marks(root, 'axis').map((axis) => ({
        title: texts(axis, 'axis-title').map((t) => t.text).join(' '),
        labels: texts(axis, 'axis-label'),
      })),
      legends: marks(root, 'legend').map((legend) => ({
        title: texts(legend, 'legend-title').map((t) => t.text).join(' '),
        labels: texts(legend, 'legend-label').map((t) => t.text),
        symbols: marks(legend, 'legend-symbol').flatMap((m) =>
          m.items.map((i) => ({ shape: i.shape, dash: String(i.strokeDash ?? ''), stroke: i.stroke, fill: i.fill }))
        ),
      })),
      marks: Object.fromEntries(
        marks(root, 'mark')
          .filter((m) => m.name)
          .map((m) => [m.name, m.items.map((i) => ({ shape: i.shape, x: i.x, y: i.y, stroke: i.stroke }))])
      ),
    };
  }

  window.addEventListener('load', () =>
    Promise.all(pending).then((charts) => {
      const out = document.createElement('pre');
      out.id = 'chart-probe';
      out.textContent = JSON.stringify(charts);
      document.body.appendChild(out);
    })
  );
})();
