// The activity catalog (GET /api/activities): names in words for actions and categories.

const empty = { categories: [], resource_types: [], activities: [] };

export class Catalog {
  constructor(data = empty) {
    this.categories = (data.categories || []).map((c) => ({ id: c.id, title: c.title || c.id }));
    this.resourceTypes = (data.resource_types || []).map((r) =>
      typeof r === 'string' ? { id: r, title: r } : { id: r.id, title: r.title || r.id },
    );
    this.activities = data.activities || [];
    this.byAction = new Map(this.activities.map((a) => [a.action, a]));
    this.categoryTitles = new Map(this.categories.map((c) => [c.id, c.title]));
  }

  /** The activity in words: the catalog's description, or the action itself. */
  describe(action) {
    return this.byAction.get(action)?.description || action || '';
  }

  /** The same, as a phrase to go on with: without its closing full stop. */
  phrase(action) {
    return this.describe(action).replace(/\.\s*$/, '');
  }

  categoryTitle(id) {
    return this.categoryTitles.get(id) || id || '';
  }
}

/** "A recipe was stopped (recipe.stopped)": the filter's option text. */
export function activityLabel(activity) {
  const words = (activity.description || '').replace(/\.\s*$/, '');
  return words ? `${words} (${activity.action})` : activity.action;
}
